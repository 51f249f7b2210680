"""avdf detectors: the Detector interface, backbones, CAD, AVPrompt, ECL, baselines and the training loop."""
