"""Timed pauses, scheduled actions and the retention guard, end to end over real HTTP.

The bot's clock is moved by hand; each test waits for the job it expects to be done (the store
says so) before checking that nothing else happened, never on a fixed sleep.
"""

from __future__ import annotations

from datetime import timedelta

from bot.jobs import JobState
from bot.vocabulary import TaskState
from tests.conftest import APPROVER1, INCIDENT, OBS_ID, REQUESTER, STREAM
from tests.flow_helpers import (
    APPROVE,
    CANCEL,
    card_text,
    eventually,
    request_id_of,
    wait_for_ephemeral,
    wait_for_stored_card,
)

RESUME = "dumptask.resume"


def stored(bot, request_id: str):
    assert bot.bot is not None
    return bot.run(bot.bot.store.get(request_id))


def wait_for_job_done(bot, job_id: str) -> None:
    assert bot.bot is not None
    store = bot.bot.store
    eventually(
        lambda: (job := bot.run(store.get_job(job_id))) and job.state is JobState.DONE,
        timeout=15,
        what=f"job {job_id} to be done",
    )


def pause(bot, slack, text: str = f"stop {STREAM} orders-to-obs --for 30m"):
    """Ask for a timed pause, approve it, and wait until the tasks are paused."""
    slack.send_command(REQUESTER, INCIDENT, text)
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    request_id = request_id_of(card)
    eventually(
        lambda: (found := stored(bot, request_id)) and found.state.is_final, what="the pause"
    )
    return card, request_id


def test_a_timed_pause_resumes_by_itself_at_its_time(start_bot, slack, dis, clock):
    """Stop --for 30m: the card says when it resumes; at that time one start call, in the thread."""
    bot = start_bot()
    card, request_id = pause(bot, slack)
    assert dis.task_state(STREAM, OBS_ID) == TaskState.PAUSED
    paused = stored(bot, request_id)
    eventually(lambda: "Resumes at" in card_text(slack, INCIDENT, card.ts), what="resume time")
    clock.advance(30 * 60)
    wait_for_job_done(bot, f"run:{paused.resume_id}")
    eventually(lambda: dis.task_state(STREAM, OBS_ID) == TaskState.RUNNING, what="the resume")
    assert [call.action for call in dis.action_calls()] == ["stop", "start"]
    eventually(
        lambda: any("end of the timed pause" in m.text for m in slack.thread(INCIDENT, card.ts)),
        what="the resume's result in the thread",
    )
    eventually(lambda: "Resumed" in card_text(slack, INCIDENT, card.ts), what="the card says so")


def test_resume_now_runs_early_and_the_schedule_then_does_nothing(start_bot, slack, dis, clock):
    """The requester's Resume now starts the tasks at once; at the planned time nothing happens."""
    bot = start_bot()
    card, request_id = pause(bot, slack)
    eventually(lambda: "Resume now" in card_text(slack, INCIDENT, card.ts), what="the button")
    slack.click(REQUESTER, INCIDENT, card.ts, RESUME)
    eventually(lambda: dis.task_state(STREAM, OBS_ID) == TaskState.RUNNING, what="early resume")
    clock.advance(31 * 60)
    wait_for_job_done(bot, f"run:{stored(bot, request_id).resume_id}")
    assert [call.action for call in dis.action_calls()] == ["stop", "start"]


def test_a_restart_between_pause_and_resume_still_resumes_once(start_bot, slack, dis, clock):
    """The resume is stored: a bot started after the pause runs it, once."""
    first = start_bot()
    _, request_id = pause(first, slack)
    resume_id = stored(first, request_id).resume_id
    first.stop()
    second = start_bot()
    clock.advance(45 * 60)
    wait_for_job_done(second, f"run:{resume_id}")
    eventually(lambda: dis.task_state(STREAM, OBS_ID) == TaskState.RUNNING, what="the resume")
    late = eventually(lambda: stored(second, resume_id).started_late_by, what="the lateness")
    assert late == 15 * 60
    assert [call.action for call in dis.action_calls()] == ["stop", "start"]


def test_two_replicas_on_postgresql_resume_once(start_bot, slack, dis, clock, postgres_url):
    """Two replicas sharing PostgreSQL and the clock: the resume's start call is made once."""
    first = start_bot(database_url=postgres_url)
    second = start_bot(database_url=postgres_url)
    slack.request_url = first.events_url
    _, request_id = pause(first, slack)
    resume_id = stored(first, request_id).resume_id
    clock.advance(30 * 60)
    wait_for_job_done(second, f"run:{resume_id}")
    eventually(
        lambda: (found := stored(second, resume_id)) and found.state.is_final, what="the resume"
    )
    assert [call.action for call in dis.action_calls()] == ["stop", "start"]


def test_at_runs_later_and_can_be_cancelled_before(start_bot, slack, dis, clock):
    """--at in an hour: approved, scheduled with a Cancel; cancelled, it never calls DIS."""
    bot = start_bot()
    at = (clock.now + timedelta(hours=1)).isoformat()
    slack.send_command(REQUESTER, INCIDENT, f"stop {STREAM} orders-to-obs --at {at}")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    assert "Runs at" in card_text(slack, INCIDENT, card.ts)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    eventually(lambda: "scheduled" in card_text(slack, INCIDENT, card.ts), what="scheduled card")
    slack.click(REQUESTER, INCIDENT, card.ts, CANCEL)
    eventually(lambda: "Cancelled" in card_text(slack, INCIDENT, card.ts), what="cancelled")
    clock.advance(2 * 3600)
    wait_for_job_done(bot, f"run:{request_id_of(card)}")
    assert dis.action_calls() == []


def test_at_runs_the_request_at_its_time(start_bot, slack, dis, clock):
    """--at in an hour: nothing before; at that time the call goes out."""
    bot = start_bot()
    at = (clock.now + timedelta(hours=1)).isoformat()
    slack.send_command(REQUESTER, INCIDENT, f"stop {STREAM} orders-to-obs --at {at}")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    slack.click(APPROVER1, INCIDENT, card.ts, APPROVE)
    eventually(lambda: "scheduled" in card_text(slack, INCIDENT, card.ts), what="scheduled card")
    assert dis.action_calls() == []
    clock.advance(3600)
    eventually(dis.action_calls, what="the call at its time")
    eventually(lambda: "succeeded" in card_text(slack, INCIDENT, card.ts), what="the outcome")


def test_a_stop_card_shows_the_safe_window_from_dis(start_bot, slack):
    """DIS keeps 24 h and the task dumped just now: the card says to resume within 24 h."""
    bot = start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"stop {STREAM} orders-to-obs")
    card = wait_for_stored_card(bot, slack, INCIDENT)
    shown = card_text(slack, INCIDENT, card.ts)
    assert "data older than 24 h is deleted: resume within 2" in shown
    assert "No end set" in shown and "--for 2" in shown


def test_both_retention_warnings_are_sent_once(start_bot, slack, dis, clock):
    """An untimed pause: one warning at 50 % and one at 90 % of the window, with a Resume button."""
    bot = start_bot()
    card, request_id = pause(bot, slack, f"stop {STREAM} orders-to-obs")
    clock.advance(12 * 3600)
    wait_for_job_done(bot, f"retention:{request_id}:50")
    clock.advance(10 * 3600)
    wait_for_job_done(bot, f"retention:{request_id}:90")
    clock.advance(10 * 3600)
    warnings = [m for m in slack.thread(INCIDENT, card.ts) if "still paused" in m.text]
    assert [w.text.split("(")[1].split(" %")[0] for w in warnings] == ["50", "90"]
    assert all(f"<@{REQUESTER}>" in w.text for w in warnings)
    assert all(RESUME in str(w.blocks) for w in warnings)


def test_bad_for_and_at_are_explained(start_bot, slack):
    """--for past the retention and --at in the past get an answer that says the limit."""
    start_bot()
    slack.send_command(REQUESTER, INCIDENT, f"stop {STREAM} orders-to-obs --for 30h")
    [too_long] = wait_for_ephemeral(slack, INCIDENT, REQUESTER)
    assert "at most 24 h" in too_long
    slack.send_command(REQUESTER, INCIDENT, f"start {STREAM} orders-archive --for 1h")
    [with_start] = wait_for_ephemeral(slack, INCIDENT, REQUESTER, count=2)[1:]
    assert "goes with `stop`" in with_start
    slack.send_command(REQUESTER, INCIDENT, f"stop {STREAM} orders-to-obs --at 2020-01-01T00:00Z")
    assert "has passed" in wait_for_ephemeral(slack, INCIDENT, REQUESTER, count=3)[-1]
