"""The course's terms as this app uses them: one list, shown in every page's footer (a popover beside Back and Next)
and in the README's "Course glossary" (tests/test_course.py checks the README says the same)."""

from __future__ import annotations

TERMS: tuple[tuple[str, str], ...] = (
    ("logit", "D's raw score before the sigmoid, any real number l; D's probability is h = σ(l) = 1 / (1 + e^(−l)). "
              "Frameworks compute BCE from the logit (the same loss, without log 0)."),
    ("critic", "the WGAN's D (C1W3). It outputs an unbounded score, not a probability, and is trained with W-loss "
               "under a 1-Lipschitz constraint (here, the gradient penalty). A BCE discriminator is not a critic."),
    ("mode", "one peak of the data's distribution: one Gaussian of the `ring` (8) or `grid` (25) data, one digit class "
             "of an image dataset. *Mode collapse*: G makes only a few of them."),
    ("high quality", "(2D data) a sample within 3σ of its nearest mode."),
    ("covered", "a 2D mode is covered when it is the nearest mode of at least one high-quality sample. An image class "
                "is covered when enough samples (a minimum fraction of them) are classified as it with confidence by "
                "the app's classifier."),
    ("FCD", "Fréchet Classifier Distance, the Fréchet distance between Gaussians fitted to the app's small classifier's "
            "features of real and generated images; lower is closer. It is not the Inception FID: compare FCDs only "
            "with each other (same classifier, dataset and sample count)."),
)


def markdown() -> str:
    """The terms as a Markdown list, as the README and the footer show them."""
    return "\n".join(f"- **{term}**: {text}" for term, text in TERMS)
