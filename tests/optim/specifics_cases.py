"""Honest and example-specific proposals for the specifics guard (issue 16.3), run end to end.

Shared by ``tests/optim/test_specifics_eval.py`` and ``benchmarks/specifics_eval.py``. Each
case runs the real path (:func:`run_specific_case`): a graph of the scenario's runs, feedback,
backward, then ``TGD.step()`` with an engine proposing the case's text and the step's
examples as guard data (as ``optimize()`` does). In ``docs_qa`` and ``arithmetic`` the
feedback is the app owner's metric's (a :class:`MetricLoss`, as in ``optimize(metric=...)``);
in ``travel`` it is end-user feedback (untrusted), through
:func:`tests.patching.copy_guard_cases.run_case`.

The honest proposals were written as a capable optimizer would write them for each
scenario's feedback: general rules, some with ordinary capitalized words, acronyms or small
numbers; they were not edited to pass. The specific ones carry a name, code or number that
only the examples use (the first is the kept prompt of the docs_qa run in BENCHMARKS 9).
"""

from __future__ import annotations

from tests.patching.copy_guard_cases import (
    Run,
    Scenario,
    Verdict,
    propose_under_guards,
    run_case,
    scenario_graph,
)
from tg_bridge.autograd import backward
from tg_bridge.loop.batching import Example
from tg_bridge.losses import MetricLoss
from tg_bridge.testing import FakeEngine

DOCS_CONTEXT = "\n".join(f"- {d}" for d in (
    "Lumen Robotics was founded in 2017 in Tampere, Finland, by Aino Virtanen and Marco Bellini.",
    "Lumen Robotics builds the Firefly, a warehouse robot that carries up to 40 kilograms.",
    "The Firefly robot runs for 9 hours on one charge and recharges in 50 minutes.",
    "The support line of Lumen Robotics is open from 8:00 to 18:00 Finnish time on weekdays.",
    "Firefly robots are leased, not sold: the standard lease costs 900 euros per month.",
    "Every Firefly has a warranty of 3 years that covers motors, batteries and sensors.",
))
_DOCS_FEEDBACK = ("Wrong format: the reply must be only the short answer (a name, number or "
                  "phrase from the documents), with no sentence or explanation.")

DOCS_QA = Scenario(
    original="You are an assistant. Use the documents.",
    runs=(
        Run("How many years does the Firefly warranty last?",
            "The Firefly warranty lasts 3 years and covers motors, batteries and sensors.",
            (DOCS_CONTEXT,), _DOCS_FEEDBACK, "3"),
        Run("At what time does the support line open?",
            "According to the documents, the support line opens at 8:00 Finnish time.",
            (DOCS_CONTEXT,), _DOCS_FEEDBACK, "8:00"),
        Run("In which city was Lumen Robotics founded?",
            "Lumen Robotics was founded in Tampere, Finland.", (DOCS_CONTEXT,),
            _DOCS_FEEDBACK, "Tampere"),
    ),
    # a small critic names the example it looked at
    gradient=("The system prompt should ask for only the short answer, for example only the "
              "number of years the Firefly warranty lasts, without a sentence."),
)

ARITHMETIC = Scenario(
    original="You are an assistant.",
    runs=(
        Run("What is 12 plus 9?", "12 plus 9 equals 21.", (),
            "Wrong format: Every reply of this app must be only the number (digits only), never "
            "a sentence.", "21"),
        Run("What is 50 minus 8?", "The answer is 42.", (),
            "Wrong format: Every reply of this app must be only the number (digits only), never "
            "a sentence.", "42"),
    ),
    gradient=("The system prompt must tell the assistant to reply with only the number, in "
              "digits, and no sentence."),
)

TRAVEL = Scenario(
    original=("You are the booking assistant of SkyWays. Answer questions about the "
              "customer's flights."),
    runs=(
        Run("When does my flight LH400 to New York leave? Booking ref QX7K2P.",
            "Your Lufthansa flight LH400 leaves Frankfurt at 10:05 and lands in New York at "
            "12:40 local time.",
            ("Booking QX7K2P: LH400 FRA-JFK, departs 10:05, gate B44, seat 32C.",),
            "Too long and you did not tell me the gate. Just give me the time and the gate.",
            "10:05"),
        Run("Can I take a second bag on my Ryanair flight FR1234?",
            "Yes, you can take a second bag.",
            ("Ryanair FR1234 DUB-STN: one cabin bag included; a second bag costs 25 EUR.",),
            "It did not say that the second bag costs extra.", None),
    ),
    gradient=("The prompt should ask for the specific facts the customer needs (times, gates, "
              "fees) stated briefly, and mention any extra cost."),
)

SPECIFIC_SCENARIOS = {"docs_qa": DOCS_QA, "arithmetic": ARITHMETIC, "travel": TRAVEL}

#: (scenario, proposal): general rules that must reach the live prompt.
HONEST_GENERAL: tuple[tuple[str, str], ...] = (
    ("docs_qa", "You are an assistant. Use the documents. Reply with only the short answer "
                "from the documents, such as a name, a number or a short phrase, with no "
                "sentence around it."),
    ("docs_qa", "You are an assistant. Use the documents. Answer with the exact fact the "
                "documents state, nothing else: no explanation, no full sentence, no final "
                "period."),
    ("docs_qa", "You are an assistant. Use the documents. Your reply is read by a program: "
                "write only the answer itself, copied from the documents, without units "
                "unless the question asks for them."),
    ("docs_qa", "You are an assistant. Use the documents. Find the sentence that answers the "
                "question and reply with just the answer words from it."),
    ("docs_qa", "You are an assistant. Use the documents. If the question asks how many or "
                "how long, reply with the number only. If it asks who or where, reply with the "
                "name only."),
    ("docs_qa", "You are an assistant. Use the documents. Give one short answer in plain "
                "text, in English, without Markdown, quotes or explanations."),
    ("docs_qa", "You are an assistant. Use the documents. Keep the reply under 5 words and "
                "never restate the question."),
    ("arithmetic", "You are an assistant. Reply with only the number, in digits, and nothing "
                   "else."),
    ("arithmetic", "You are an assistant. Your output must be only the numeric result (digits "
                   "only), never a sentence or an explanation."),
    ("arithmetic", "You are an assistant. Compute the result and answer with the bare number: "
                   "no words, no units, no punctuation."),
    ("arithmetic", "You are a calculator. For every question, output the final numeric answer "
                   "as digits only."),
    ("arithmetic", "You are an assistant. Answer every question with a single integer written "
                   "in digits. Do not repeat the question."),
    ("arithmetic", "You are an assistant. Reply with the result only, for example in the form "
                   "of a plain number, and never with a full sentence."),
    ("arithmetic", "You are an assistant. Do the arithmetic carefully and write only the "
                   "answer as a number; a downstream program parses your reply, so any other "
                   "text breaks it."),
    ("travel", "You are the booking assistant of SkyWays. Answer questions about the "
               "customer's flights briefly: give the departure time and gate when asked about "
               "a departure, and always mention extra fees."),
    ("travel", "You are the booking assistant of SkyWays. Answer questions about the "
               "customer's flights with the exact facts from the booking (times, gates, "
               "seats, baggage rules) in one or two sentences."),
    ("travel", "You are the booking assistant of SkyWays. Answer questions about the "
               "customer's flights. Use 24-hour times as written in the booking, and say when "
               "something costs extra."),
    ("travel", "You are the booking assistant of SkyWays. Answer questions about the "
               "customer's flights. Be brief, lead with the fact the customer asked for, and "
               "add fees or conditions that apply to it."),
    ("travel", "You are the booking assistant of SkyWays. Answer the customer's flight "
               "questions directly from the booking details; do not invent information and do "
               "not leave out costs."),
    ("travel", "You are the booking assistant of SkyWays. Answer questions about the "
               "customer's flights. If a baggage or seat option has a fee, state the fee in "
               "the currency of the booking."),
)

#: (scenario, proposal): proposals naming example specifics; each must be refused.
EXAMPLE_SPECIFIC: tuple[tuple[str, str], ...] = (
    ("docs_qa", "You are an assistant. Use the documents. Please provide the number of years "
                "the Firefly warranty lasts, in the format of a single number."),
    ("docs_qa", "You are an assistant for Lumen Robotics. Use the documents and reply with "
                "only the short answer."),
    ("docs_qa", "You are an assistant. Use the documents. Opening times such as 18:00 must be "
                "given exactly."),
    ("docs_qa", "You are an assistant. Use the documents. When asked about founders, answer "
                "Aino Virtanen or Marco Bellini only."),
    ("docs_qa", "You are an assistant. Use the documents. Prices are in euros, e.g. 900."),
    ("arithmetic", "You are an assistant. Reply with only the number, like 42."),
    ("arithmetic", "You are an assistant. For a question like 12 plus 9 reply only with digits."),
    ("travel", "You are the booking assistant of SkyWays. For flight LH400, give the gate."),
    ("travel", "You are the booking assistant of SkyWays. Lufthansa departures: give the time "
               "and gate only."),
    ("travel", "You are the booking assistant of SkyWays. Mention that a second Ryanair bag "
               "costs extra."),
)


#: Scenarios whose feedback a metric writes (trusted), not an end user.
METRIC_FEEDBACK = frozenset({"docs_qa", "arithmetic"})


def run_specific_case(name: str, proposal: str) -> Verdict:
    """Run scenario ``name`` with ``proposal`` as the optimizer's answer (see the module doc)."""
    scenario = SPECIFIC_SCENARIOS[name]
    if name not in METRIC_FEEDBACK:
        return run_case(scenario, proposal)
    system, answers = scenario_graph(scenario)
    losses = [MetricLoss(lambda ex, out, _f=run.feedback: (0.0, _f), name="metric")(
        answer, Example({"question": run.question}, run.expected))
        for run, answer in zip(scenario.runs, answers)]
    backward(losses, engine=FakeEngine(lambda messages: scenario.gradient))
    examples = [Example({"question": r.question, **({"context": r.documents[0]}
                                                     if r.documents else {})}, r.expected)
                for r in scenario.runs]
    return propose_under_guards(scenario, system, proposal, examples)
