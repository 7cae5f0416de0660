"""Hand-made `evaluate_robustness` results and their results documents (no model runs).

`evaluation()`: two epsilons (0.25, 0.5), PGD of step 1/256 with 2 restarts,
counts recorded after 10 and 20 steps, 20 examples; `document()` its results
document; `two_draws()` two repetitions of it for a randomized model.
"""

from tf_atalp.attacks import PGD, Restarts
from tf_atalp.evaluation import results_document


def pgd_attack(*args, restarts=1, **kwargs):
    """A PGD attack with `restarts` random starts (an example must survive them all)."""
    return Restarts(PGD(*args, **kwargs), restarts)


def evaluation(n=20):
    """An `evaluate_robustness` result for two epsilons, counts 10 and 20."""
    def attack_result(epsilon, correct, worst):
        return {"attack": pgd_attack(epsilon, 1 / 256, 20, restarts=2), "record_at": [10, 20],
                "correct": correct, "accuracy": [c / n for c in correct],
                "worst_iterate_correct": worst, "worst_iterate_accuracy": [w / n for w in worst],
                "per_class_correct": [correct[-1], 0], "per_class_worst_iterate_correct":
                [worst[-1], 0]}
    return {"num_examples": n, "clean_correct": 15, "clean_accuracy": 15 / n,
            "per_class": {"num_examples": [n, 0], "clean_correct": [15, 0]},
            "attacks": [attack_result(0.25, [8, 9], [8, 7]), attack_result(0.5, [3, 2], [2, 1])],
            "worst_case": [{"epsilon": 0.25, "attacks": [0], "robust_correct": 7,
                            "robust_accuracy": 7 / n},
                           {"epsilon": 0.5, "attacks": [1], "robust_correct": 1,
                            "robust_accuracy": 1 / n}]}


def document(**kwargs):
    """The results document of `evaluation()` (`kwargs`: more of `results_document`'s)."""
    return results_document(
        evaluation(), dataset={"name": "synthetic", "split": "test"},
        model={"path": "/runs/a", "format": "keras", "defense": "at_alp"},
        command=["eval_main.py", "--model_dir=/runs/a"], **kwargs)


def two_draws():
    """Two repetitions of `evaluation()`: the second has 13 clean and, at epsilon 0.25,
    6 and 5 correct after 10 and 20 steps and 3 robust."""
    first, second = evaluation(), evaluation()
    second["clean_correct"], second["clean_accuracy"] = 13, 13 / 20
    second["attacks"][0]["correct"] = [6, 5]
    second["attacks"][0]["accuracy"] = [6 / 20, 5 / 20]
    second["worst_case"][0]["robust_correct"] = 3
    second["worst_case"][0]["robust_accuracy"] = 3 / 20
    return [first, second]
