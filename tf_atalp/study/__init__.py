"""The whole experiment as one command (`study_main.py`): train, attack, compare, report.

- `config.py`: `StudyConfig` and `Entry` (plain checked data); `flags.py`: study_main's flags.
- `train_cells.py`: one train_main run per entry and seed, checked before any work.
- `eval_cells.py`: the paper protocol over every model, AutoAttack per target.
- `runner.py`: `prepare_study` and `run_study` (resumable cells, progress, time left).
- `estimate.py`: the time estimate from steps measured on this machine.
- `aggregate.py`: per-image outcomes; `statistics.py`: spread, McNemar, bootstrap.
- `report.py`, `figures.py`: the report folder.
"""
