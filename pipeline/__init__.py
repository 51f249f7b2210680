"""avdf data pipeline: fetch, ingest, media I/O, preprocessing, Ray stages, shards and the Clip record."""
