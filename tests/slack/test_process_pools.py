"""The work path as deployed (``serve.isolation: processes``): buttons, modals decided inside their ack,
and a stop that leaves no process behind, through ``migrate-bot serve`` and signed requests."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.ids import Modal, ModalInput, PlanAction
from tests.slack.fake_api import FakeSlack
from tests.slack.process import ServeProcess, poll, serve_config, serve_process
from tests.slack.signing import view_submission_body

HIGH = "061_drop_legacy_field.sql"


@pytest.fixture
def serve(tmp_path: Path, fake_slack: FakeSlack, migrations: Path) -> Iterator[ServeProcess]:
    with serve_process(tmp_path, fake_slack, serve_config(tmp_path, migrations)) as bot:
        yield bot.start()


def planned(serve: ServeProcess) -> int:
    serve.command(f"plan {HIGH} production")
    return poll(
        lambda: serve.store.plan_id(HIGH) if (serve.store.plan(1) or {}).get("message_ts") else None,
        30,
        "the plan posted",
    )


def submit(serve: ServeProcess, callback: str, plan_id: int, values: dict, *, user: str, view: str) -> dict:
    body = view_submission_body(
        user_id=user, callback_id=callback, private_metadata=str(plan_id), values=values, view_id=view
    )
    status, text = serve.send(body)
    assert status == 200
    return json.loads(text) if text else {}


def reason(text: str) -> dict:
    return {ModalInput.REASON: {ModalInput.REASON: {"type": "plain_text_input", "value": text}}}


def test_a_modal_refusal_stays_in_the_modal_and_a_valid_one_decides(serve: ServeProcess) -> None:
    plan_id = planned(serve)
    serve.click(PlanAction.REJECT, plan_id, user="U0PO")  # the worker process opens the modal
    serve.fake.wait_for("views.open", timeout=20)
    refused = submit(serve, Modal.REJECT, plan_id, reason("  "), user="U0PO", view="V0P1")
    assert refused["response_action"] == "errors" and "say why" in refused["errors"][ModalInput.REASON]
    stranger = submit(serve, Modal.REJECT, plan_id, reason("no"), user="U0QA1", view="V0P2")
    assert "may reject plan" in stranger["errors"][ModalInput.REASON]
    assert submit(serve, Modal.REJECT, plan_id, reason("back up first"), user="U0PO", view="V0P3") == {}
    assert (serve.store.plan(plan_id) or {})["state"] == "rejected"
    news = serve.fake.wait_for_delivered("chat.postMessage", count=5, timeout=20)[-1].args["text"]
    assert "rejected plan" in news and "back up first" in news


def test_a_member_with_two_roles_picks_one_across_processes(serve: ServeProcess) -> None:
    plan_id = planned(serve)
    serve.click(PlanAction.APPROVE, plan_id, user="U0TWOHATS")
    view = serve.fake.wait_for("views.open", timeout=20)[0].args["view"]
    options = [
        o["value"]
        for o in (json.loads(view) if isinstance(view, str) else view)["blocks"][0]["element"]["options"]
    ]
    assert options == ["technical_lead", "cto"]
    choice = {
        ModalInput.SLOT: {ModalInput.SLOT: {"type": "radio_buttons", "selected_option": {"value": "cto"}}}
    }
    assert submit(serve, Modal.APPROVE_AS, plan_id, choice, user="U0TWOHATS", view="V0P4") == {}
    assert [(a["slot"], a["user_id"]) for a in serve.store.approvals(plan_id)] == [("cto", "U0TWOHATS")]


def test_sigterm_stops_the_bot_and_its_worker_processes(serve: ServeProcess) -> None:
    planned(serve)
    assert serve.process is not None
    children = [
        int(p)
        for p in Path(f"/proc/{serve.process.pid}/task/{serve.process.pid}/children").read_text().split()
    ]
    assert len(children) >= 4  # two planning and two decision processes
    assert serve.stop() == 0 or serve.process.returncode == -signal.SIGTERM
    for child in children:
        poll(
            lambda child=child: (
                not Path(f"/proc/{child}").exists()
                or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
            ),
            10,
            f"worker {child} gone",
        )
