"""The specifics guard (issue 16.3): a proposal naming what only the examples name is refused,
and the optimizer asks once for a general instruction."""

from __future__ import annotations

import pytest

from tg_bridge.exceptions import PatchValidationError
from tg_bridge.optim.specifics import REASON, check_specifics, distinctive_terms
from tg_bridge.optim.tgd import TGD
from tg_bridge.testing import FakeEngine
from tg_bridge.variable import Variable

DOCS = ("Lumen Robotics builds the Firefly, a warehouse robot. Every Firefly has a warranty of "
        "3 years. The Best robots are leased; the best price is 900 euros.")
FIREFLY = ("You are an assistant. Please provide the number of years the Firefly warranty "
           "lasts, in the format of a single number.")


def test_distinctive_terms_are_names_codes_and_long_numbers():
    terms = distinctive_terms([DOCS, "Order X200 shipped at 8:00. Ask iPhone users."])
    assert set(terms.values()) >= {"Firefly", "900", "X200", "8:00", "iPhone"}
    # "Lumen" starts a sentence only; "Best" is written "best" elsewhere; "3" is one digit
    assert not {"Lumen", "Best", "3", "The", "Every"} & set(terms.values())


@pytest.mark.parametrize("proposal", [
    FIREFLY,
    "Answer about the firefly robot only.",  # any case
    "Answer about the F1refly robot only.",  # obfuscated
    "Prices such as 900 must be exact.",
    "For order X200 give the date.",
])
def test_example_specific_proposals_are_refused(proposal):
    with pytest.raises(PatchValidationError) as info:
        check_specifics(proposal, [DOCS, "Order X200 shipped."], target="system")
    assert info.value.reason == REASON and "system" in str(info.value)


def test_the_owner_s_words_and_class_names_are_allowed():
    general = "You are an assistant for the Firefly line. Reply with only the number."
    check_specifics(general, [DOCS], trusted=["You are an assistant for the Firefly line."])
    check_specifics("Reply with the constraint word Firefly.", [DOCS],
                    trusted=["Mention Firefly when relevant."])  # a constraint names it
    # a label given by two examples is a class name ("Billing"); a repeated number is not
    texts = ["Ticket about Billing for Acme.", "Another ticket."]
    check_specifics("Reply Billing or Technical.", texts, labels=["Billing", "Billing", "Other"])
    with pytest.raises(PatchValidationError):
        check_specifics("Reply 42 always.", ["What is 50 minus 8? It is 42."],
                        labels=["42", "42"])
    # a one-digit number and words used in lower case by the examples are fine
    check_specifics("Reply in 1 sentence; the best answer is short.", [DOCS])


def _param() -> Variable:
    param = Variable("You are an assistant. Use the documents.", role="system prompt",
                     requires_grad=True, kind="parameter", name="system")
    param.add_gradient("Ask only for the number of years the Firefly warranty lasts.")
    return param


def test_tgd_asks_once_for_a_general_instruction():
    answers = iter([FIREFLY, "You are an assistant. Use the documents. Reply with only the "
                             "short answer, no sentence."])
    seen: list[str] = []

    def respond(messages, fmt):
        seen.append(messages[-1]["content"])
        return {"improved_value": next(answers)}

    param = _param()
    patch = TGD([param], engine=FakeEngine(respond), untrusted_texts=[DOCS]).propose()
    (change,) = patch.changes
    assert "Firefly" not in change.new and not patch.metadata["rejected"]
    assert len(seen) == 2 and "refused" in seen[1] and "'Firefly'" in seen[1]
    assert patch.metadata["calls"] == 2


def test_a_second_specific_answer_is_refused_with_its_reason():
    param = _param()
    engine = FakeEngine(lambda messages, fmt: {"improved_value": FIREFLY})
    patch = TGD([param], engine=engine, untrusted_texts=[DOCS]).propose()
    assert not patch.changes and len(engine.calls) == 2
    (rejected,) = patch.metadata["rejected"]
    assert rejected["reason"] == REASON and rejected["proposed"] == FIREFLY
    assert param.value == "You are an assistant. Use the documents."


def test_other_refusals_are_not_asked_again():
    param = _param()
    copied = "You are an assistant. " + DOCS  # a copy of the data: refused, not asked again
    engine = FakeEngine(lambda messages, fmt: {"improved_value": copied})
    patch = TGD([param], engine=engine, untrusted_texts=[DOCS]).propose()
    assert patch.metadata["rejected"][0]["reason"] == "copy_guard" and len(engine.calls) == 1
