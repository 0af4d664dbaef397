"""Layer-wise pruning of torch models: SparseGPT, exact OBS, Wanda, magnitude and iterated I-OBS.

Installed by the ``obsbench[torch]`` extra. See ``pruning/README.md`` for the re-specified I-OBS procedure
(the paper's Algorithm 2), the offline models and data, and the commands.
"""
