"""Sanity checks on a white-box results document (Carlini et al. 2019; Athalye et al. 2018).

Each check is a property every honest evaluation has; a violation does not
prove gradient masking, but it says the attack was too weak to trust the
number, so it is reported in words a reader cannot miss:

- robust accuracy is non-increasing in epsilon (a larger ball holds every
  point of a smaller one, so a strong attack does at least as well there);
- at epsilon >= 0.5 every image can be moved to uniform grey (all pixels
  0.5), on which the model predicts a single class, so white-box accuracy
  is at most the share of the most frequent class.
"""

GREY_EPSILON = 0.5
WARNING = "gradient masking suspected"


def sanity_checks(document: dict) -> list[str]:
    """The violated checks of a results document, one sentence each ([] when all hold)."""
    messages = []
    robust = sorted(document.get("robust_accuracy") or [], key=lambda entry: entry["epsilon"])
    for smaller, larger in zip(robust, robust[1:]):
        if larger["robust_accuracy"] > smaller["robust_accuracy"]:
            messages.append(
                f"{WARNING}: robust accuracy rises with epsilon, {smaller['robust_accuracy']:.4f} "
                f"at {smaller['epsilon']:g} but {larger['robust_accuracy']:.4f} at "
                f"{larger['epsilon']:g}; the attack at {larger['epsilon']:g} is weaker than it "
                "should be (more steps, restarts or another attack)")
    totals = (document.get("per_class") or {}).get("num_examples") or []
    if totals and sum(totals):
        majority = max(totals) / sum(totals)
        for entry in robust:
            if entry["epsilon"] >= GREY_EPSILON and entry["robust_accuracy"] > majority:
                messages.append(
                    f"{WARNING}: robust accuracy {entry['robust_accuracy']:.4f} at epsilon "
                    f"{entry['epsilon']:g} is above the largest class share {majority:.4f}, "
                    "although every image can be moved to uniform grey at that radius")
    return messages
