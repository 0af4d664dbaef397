"""obsbench's Hydra plugins (found by Hydra in the ``hydra_plugins`` namespace package): the ``skip_stored``
sweeper and the SLURM launcher of the ``hydra/launcher=slurm`` preset. The logic lives in
`experiments.execution.sweep` and `experiments.execution.submitted`; these classes only plug it into Hydra."""
