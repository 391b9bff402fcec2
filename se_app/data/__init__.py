"""Training and test data: the corpus (:mod:`.corpus`), simulated rooms (:mod:`.rooms`), signal
augmentations (:mod:`.augment`) and the noisy-speech mixer (:mod:`.mixer`)."""
from .augment import noise_segment as _noise_segment
from .augment import power
from .augment import segment as _segment
from .corpus import (BIN_HZ, KINDS, RATE, Clip, _bucket, _split_of, band_bins_of, keep_fraction, list_corpus,
                     load_clip, load_corpus)
from .mixer import TARGETS, Example, MixConfig, Mixer
from .prefetch import Prefetcher

__all__ = ["BIN_HZ", "KINDS", "RATE", "TARGETS", "Clip", "Example", "MixConfig", "Mixer", "Prefetcher", "band_bins_of",
           "keep_fraction", "list_corpus", "load_clip", "load_corpus", "power", "_bucket", "_split_of",
           "_segment", "_noise_segment"]
