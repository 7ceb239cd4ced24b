"""``carepath.explain_words``: each failing leaf in a coordinator's words, alternatives together."""

from __future__ import annotations

from carepath.explain_words import candidate_line, text
from pathway.explain import explain_episode
from tests.support.pathway_runs import PRESENTATION, Run, at_three_month_review


def test_alternatives_are_said_together_and_the_rest_one_by_one() -> None:
    run = Run.open({"age": 70})
    run.observe(PRESENTATION, day=0)  # in workup: no imaging, no neuro exam
    e = explain_episode(run.definition, run.episode, run.at())
    wu = next(c for c in e.candidates if c.rule == "WU-COMPLETE")
    line = candidate_line(run.definition, wu)
    assert line.heading == "WU-COMPLETE → Conservative care" and not line.holds
    assert line.needs[-1] == "Neurological exam done (unknown)"
    assert line.needs[0].startswith("either ") and ", or " in line.needs[0]
    assert len(line.needs) == 2


def test_a_comparison_says_what_it_needs_and_what_was_seen() -> None:
    run = at_three_month_review(pain=5)
    e = explain_episode(run.definition, run.episode, run.at(95))
    dr = next(c for c in e.candidates if c.rule == "DR-PAIN")
    (need,) = candidate_line(run.definition, dr).needs
    assert need == "Pain score ≥ 7 NRS (is 5 NRS)", need
    said = "\n".join(text(run.definition, e))
    assert "next observation: RA-CONTINUE → Conservative care" in said
    assert "✗ DR-PAIN → Kyphoplasty consideration: needs " in said


def test_a_timer_is_said_with_its_condition() -> None:
    from tests.support.pathway_runs import in_care

    run = in_care(pain=6)
    said = text(run.definition, explain_episode(run.definition, run.episode, run.at()))
    assert any(
        line.startswith("  FU-REIMAGE due ") and line.endswith("fires (pain_score >= 4 holds now)")
        for line in said
    ), said
    assert any(line.startswith("  FU-REASSESS → Reassessment due ") for line in said), said
    assert "next observation: moves nothing as things stand" in said
