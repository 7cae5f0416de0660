"""`trades` (Zhang, Yu, Jiao, Xing, El Ghaoui, Jordan 2019, "Theoretically
Principled Trade-off between Robustness and Accuracy").

Loss: CE(clean) + beta * mean_n KL(p(clean_n) || p(adv_n)), both predictions
of the network in training mode, the gradient flowing through both. The
training attack maximises that KL, not the cross-entropy: PGD with the
run's epsilon, step and iterations and the objective "kl_to_clean"
(`tf_atalp.attacks.objectives`), started at clean + 0.001 * N(0, 1) (the KL
and its gradient are 0 at the clean image), with BatchNorm in inference
mode, as in the authors' code.

Defaults, from the authors' code (yaodongyu/TRADES): beta = 6
(`train_trades_cifar10.py`, `--beta`, "1/lambda in TRADES"; the README
gives [1, 10]); the 0.001 * N(0, 1) start, the KL with `reduction="batchmean"`
(sum over classes, mean over the batch) and `model.eval()` during the attack
from `trades.py`. One difference: the clean and adversarial batches go
through the network as one concatenated batch (shared BatchNorm statistics,
as for every defense here); the authors run them as two batches.
"""

import dataclasses

import tensorflow as tf

from tf_atalp import losses
from tf_atalp.defenses.base import Defense, check_weight
from tf_atalp.defenses.terms import ADVERSARIAL, CLEAN, CrossEntropyTerm, LossInputs, LossTerm

DEFAULT_TRADES_BETA = 6.0


@dataclasses.dataclass(frozen=True)
class KLToCleanTerm(LossTerm):
    """mean_n KL(p(clean_n) || p(adv_n)): TRADES' robust term."""

    name: str = "kl"
    needs: frozenset = frozenset({CLEAN, ADVERSARIAL})

    def __call__(self, inputs: LossInputs) -> tf.Tensor:
        return losses.kl_divergence(inputs.logits(CLEAN), inputs.logits(ADVERSARIAL))


@dataclasses.dataclass(frozen=True)
class TRADES(Defense):
    """CE(clean) + trades_beta * KL(p(clean) || p(adv)); the attack maximises the KL.

    Attributes:
      trades_beta: the KL's weight (>= 0; 0 is clean training with an
        unused attack). Larger is more robust and less accurate.
    """

    name = "trades"
    description = "CE(clean) + beta KL(clean || adversarial), KL attack (Zhang et al.)"
    trades_beta: float = DEFAULT_TRADES_BETA

    def __post_init__(self):
        check_weight("trades_beta", self.trades_beta)
        super().__post_init__()

    def loss_terms(self):
        return (CrossEntropyTerm(on=CLEAN), KLToCleanTerm(weight=self.trades_beta))

    def training_attack(self, attack):
        return dataclasses.replace(attack, objective="kl_to_clean", random_start=True,
                                   start_noise="gaussian")
