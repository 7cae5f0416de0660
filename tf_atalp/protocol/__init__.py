"""The paper's experiments as one command (`eval_main.py --protocol=paper`).

Targets (one model_dir per defense) are attacked white-box and by transfer
from gray-box and black-box source model_dirs, under the paper's PGD setting
and a strong one, cell by cell (resumable); Table 1, Figures 3, 4 and 6,
Table 2 and the sanity checks go into `output_dir` with report.md.

- `settings.py`: `AttackSetting`, `paper_setting`, `strong_setting`, `ProtocolConfig`.
- `models.py`: the model_dirs, checked (threat model of each source).
- `data.py`: the test examples, in memory.
- `cells.py`: the resumable cell store; `cell_runs.py`: what a cell computes.
- `tables.py`, `checks.py`, `analyses.py`, `figures.py`, `report.py`: the outputs.
- `runner.py`: `prepare_protocol` (every check) and `run_protocol`.
- `flags.py`: eval_main's protocol flags.
"""

from tf_atalp.protocol.runner import Protocol, prepare_protocol, run_protocol
from tf_atalp.protocol.settings import (
    PAPER, STRONG, AttackSetting, ProtocolConfig, paper_setting, strong_setting)

__all__ = ["PAPER", "STRONG", "AttackSetting", "Protocol", "ProtocolConfig", "paper_setting",
           "prepare_protocol", "run_protocol", "strong_setting"]
