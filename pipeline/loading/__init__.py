"""WebDataset shards of preprocessed clips: the shard format and index, segment sampling,
and the training / evaluation loaders. The public names are re-exported by ``pipeline.loaders``."""
