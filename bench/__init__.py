"""medmo-data benchmarks (`make bench` = `python -m bench`): build, scaling, memory, mix, trainer adapter
and reward rows, each against a baseline measured side by side in the same run. See docs/scale.md."""
