"""The bandit in a live session, built in process packet by packet as the runner drives it:
K isolated instances behind the gate, every decision journaled; the journal replays to the
same choices (taken from it, never drawn), the chooser learns the same, and a changed, a
missing or an extra decision fails parity with the decision shown."""

from __future__ import annotations

import base64
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from framework.cli import main
from framework.core.errors import ConfigError
from framework.engine.config import LatencyConfig, QueueConfig
from framework.features.model import FeatureModel
from framework.ingest.synthetic import generate_day
from framework.store import TickStore
from framework.strategy.spec import strategies_from_words
from live.bandit import BanditSpec, LiveBandit, read_sets, session_strategies
from live.feeds.itch_mold import MoldFeedHandler
from live.journal import KIND_FEED, JournalWriter, Record, read
from live.replay import Parity, Session, drive, parity
from live.runner import KIND_ADVANCE, KIND_GATE, LiveRunner
from research.ml.bandit import ThompsonBandit, load_state, save_state
from research.ml.regime import as_l2, fit_regimes
from tests.unit.live.test_runner import DATE, T0, _packets

SETS = [{"max_position": 1}, {"max_position": 4}]
EPOCH_NS = 10_000_000  #: 10 ms of the replay clock (a packet every 1 ms, ~0.4 s in all)


@cache
def model() -> FeatureModel:
    """A regime model on the packets' own time scale (a packet a millisecond), so the
    contexts change within the session."""
    day = generate_day(date=DATE, n_events=6_000, seed=9, mode="l3")
    ev = as_l2(day.events).copy()
    ev["local_ts"] = T0 + np.arange(len(ev)) * 125_000
    ev["exch_ts"] = ev["local_ts"]
    return fit_regimes([ev], halflife_ns=20_000_000, baseline_halflife_ns=400_000_000,
                       max_samples=5_000).feature_model()


def _meta(rep: object, spec: BanditSpec) -> dict[str, object]:
    m = model()
    return {"strategy": ["one_tick_mm"], "param": [], "risk": [], "mode": "python",
            "venue": "SIM", "symbol": "SYN", "date": DATE.isoformat(),
            "feed": "itch://127.0.0.1:1", "gateway": None, "paper": True,
            "latency": "constant:200us", "queue": "power:2",
            "instrument": rep.instrument.to_dict(),  # type: ignore[attr-defined]
            "price_step": rep.price_step, "qty_step": rep.qty_step,  # type: ignore[attr-defined]
            "locate": 1,
            "feature_model": {"path": "m.npz",
                              "npz_base64": base64.b64encode(m.to_bytes()).decode()},
            "bandit": spec.to_meta()}


def bandit_journal(where: Path, *, seed: int = 3, state: dict | None = None) -> LiveBandit:
    """A paper session of one_tick_mm with a bandit over SETS; its bandit afterwards."""
    rep, packets = _packets()
    spec = BanditSpec(sets=tuple(SETS), epoch_ns=EPOCH_NS, seed=seed, state=state)
    template = strategies_from_words(["one_tick_mm"])[0]
    bandit = LiveBandit(spec, template, n_regimes=len(model().label_names))
    feed = MoldFeedHandler(listen=("127.0.0.1", 0), date=DATE,
                           price_step=rep.price_step,  # type: ignore[attr-defined]
                           qty_step=rep.qty_step)  # type: ignore[attr-defined]
    with JournalWriter(where, fsync="never") as j:
        r = LiveRunner(instrument=rep.instrument,  # type: ignore[attr-defined]
                       strategies=bandit.strategies, feed=feed, gateway=None, mode="python",
                       latency=LatencyConfig.parse("constant:200us"),
                       queue=QueueConfig.parse("power:2"), journal=j,
                       meta=_meta(rep, spec), feature_model=model(), bandit=bandit)
        try:
            r.start(T0)
            t = T0
            for k, p in enumerate(packets):
                t += 1_000_000
                j.append(KIND_FEED, p, ts=t)
                if feed.apply_packets([p], t):
                    r._run(t)
                if k % 7 == 0:
                    t += 300_000
                    j.append(KIND_ADVANCE, b"", ts=t)
                    r._run(t)
            r.finish()
        finally:
            feed.close()
    return bandit


def _gate_rows(where: Path) -> list[dict]:
    return [json.loads(r.payload) for r in read(where) if r.kind == KIND_GATE]


def _rewrite(src: Path, dst: Path, change: object) -> None:
    """The journal with its k-th gate decision changed by ``change(k, row)`` (None: left
    out)."""
    k = 0
    with JournalWriter(dst, fsync="never") as w:
        for r in read(src):
            payload = r.payload
            if r.kind == KIND_GATE and not json.loads(payload).get("close"):
                k += 1
                row = change(k, json.loads(payload))  # type: ignore[operator]
                if row is None:
                    continue
                payload = json.dumps(row).encode()
            w.append(r.kind, payload, stream=r.stream, ts=r.ts)


def _replay(where: Path, records: list[Record] | None = None, *,
            recovering: bool = False) -> tuple[Parity, LiveBandit]:
    """A replay runner driven through the journal (or ``records``); its parity and bandit."""
    recs = records if records is not None else list(read(where))
    s = Session.of(recs, where)
    strategies, bandit = session_strategies(s.meta, s.feature_model())
    assert bandit is not None
    feed = s.feed()
    r = LiveRunner(instrument=s.instrument, strategies=strategies, feed=feed, gateway=None,
                   mode="python", latency=LatencyConfig.parse("constant:200us"),
                   queue=QueueConfig.parse("power:2"), replay=True, paper=True,
                   feature_model=s.feature_model(), bandit=bandit)
    out = Parity()
    try:
        drive(r, recs, out, recovering=recovering)
    finally:
        r.engine.abort()
        feed.close()
    return out, bandit


def test_a_bandit_session_journals_every_decision_and_replays_to_it(tmp_path: Path) -> None:
    live = bandit_journal(tmp_path / "j")
    rows = _gate_rows(tmp_path / "j")
    decisions = [r for r in rows if not r.get("close")]
    assert [(r["ts"], r["context"], r["arm"]) for r in decisions] == \
        [(t, c, a) for t, c, a, _ in live.gate.log]
    assert len(decisions) > 20
    assert rows[-1]["close"]
    assert rows[-1]["reward"] == live.gate.log[-1][3]
    assert {r["arm"] for r in decisions} == {0, 1, 2}  # both sets and the flat arm
    assert len({r["context"] for r in decisions}) >= 2  # the regime moved
    assert decisions[0]["reward"] is None
    # the reward a decision reports is the ending epoch's, as the gate logged it
    assert [r["reward"] for r in decisions[1:]] == [g[3] for g in live.gate.log[:-1]]
    p = parity(tmp_path / "j")
    assert p.ok, p.first_difference
    assert p.compared == p.live > 10


def test_the_replay_takes_the_journaled_arms_and_learns_as_the_session_did(
    tmp_path: Path,
) -> None:
    live = bandit_journal(tmp_path / "j", seed=11)
    out, again = _replay(tmp_path / "j")
    assert out.ok, out.first_difference
    assert [row[:3] for row in again.gate.log] == [row[:3] for row in live.gate.log]
    # it never drew: its generator is where the seed put it
    fresh = np.random.default_rng(11).bit_generator.state
    assert again.learner.rng.bit_generator.state == fresh
    assert live.learner.rng.bit_generator.state != fresh
    # ... and it was told every reward but the last epoch's (closed at the session's end)
    live_n = live.learner.n.copy()
    last = live.gate.log[-1]
    live_n[last[1], last[2]] -= 1
    np.testing.assert_array_equal(again.learner.n, live_n)


def test_a_changed_missing_or_extra_decision_fails_parity(tmp_path: Path) -> None:
    bandit_journal(tmp_path / "j")
    n = len([r for r in _gate_rows(tmp_path / "j") if not r.get("close")])

    def context(k: int, row: dict) -> dict:
        return {**row, "context": (row["context"] + 1) % 4} if k == 5 else row

    def reward(k: int, row: dict) -> dict:
        return {**row, "reward": row["reward"] + 0.5} if k == 7 else row

    def arm(k: int, row: dict) -> dict:
        return {**row, "arm": (row["arm"] + 1) % 3} if k == 6 else row

    for name, change, shown in (
        ("context", context, "gate decision 5: live: "),
        ("reward", reward, "gate decision 7: live: "),
        ("missing", lambda k, row: None if k == n else row, f"gate decision {n}: live: nothing"),
    ):
        _rewrite(tmp_path / "j", tmp_path / name, change)
        p = parity(tmp_path / name)
        assert not p.ok, name
        assert p.first_difference is not None
        assert p.first_difference.startswith(shown), (name, p.first_difference)
    # an arm changed in the journal is the arm the replay takes (it agrees with decision 6):
    # another instance trades that epoch, and the reward the next decision reports is not
    # the session's
    _rewrite(tmp_path / "j", tmp_path / "arm", arm)
    p = parity(tmp_path / "arm")
    assert not p.ok
    assert (p.first_difference or "").startswith("gate decision 7: live: ")
    _, again = _replay(tmp_path / "arm")
    assert again.gate.log[5][2] == (_gate_rows(tmp_path / "j")[5]["arm"] + 1) % 3


def test_recovery_draws_only_past_the_journals_last_decision(tmp_path: Path) -> None:
    """A crash right after a decision was made but before it was journaled: the replay of
    what was journaled reaches it, draws it anew (allowed only when recovering) and hands
    it to the resumed session's journal."""
    bandit_journal(tmp_path / "j")
    recs = list(read(tmp_path / "j"))
    gates = [k for k, r in enumerate(recs) if r.kind == KIND_GATE]
    cut = recs[: gates[-2]] + [r for r in recs[gates[-2] + 1 : gates[-1]]
                               if r.kind != KIND_GATE]
    out, b = _replay(tmp_path / "j", cut)
    assert out.first_difference is not None
    assert out.first_difference.endswith(f"live: nothing; replay: {_show(b.fresh[0])}")
    out, b = _replay(tmp_path / "j", cut, recovering=True)
    assert out.ok, out.first_difference
    assert len(b.fresh) == 1
    active = b.gate.active
    assert active == b.fresh[0]["arm"]
    b.resume()
    assert b.gate.chooser is b.learner
    assert b.gate.active == active  # the session goes on with the arm it has

    drawn = list(b.fresh)
    with JournalWriter(tmp_path / "resumed", fsync="never") as w:
        b.runner.journal = w  # what attach_journal gives it
        b.journal_pending()
    assert _gate_rows(tmp_path / "resumed") == drawn
    assert not b.fresh


def _show(row: dict) -> str:
    return ", ".join(f"{k}={row[k]}" for k in ("ts", "context", "arm", "reward"))


def test_the_learned_state_goes_to_a_file_and_back(tmp_path: Path) -> None:
    live = bandit_journal(tmp_path / "j")
    path = live.save(tmp_path / "state.json")
    state = load_state(path, SETS, n_contexts=4)
    back = ThompsonBandit.from_state(state)
    np.testing.assert_array_equal(back.total, live.learner.total)
    np.testing.assert_array_equal(back.n, live.learner.n)
    # a session started from it learns on from there (and replays from the journal's copy)
    again = bandit_journal(tmp_path / "j2", state=state)
    assert (again.learner.n >= live.learner.n).all()
    assert again.learner.n.sum() > live.learner.n.sum()
    assert parity(tmp_path / "j2").ok
    bad = {
        "other sets": ([{"max_position": 2}, {"max_position": 4}], "learned for the parameter"),
        "other contexts": (SETS, "contexts"),
    }
    for name, (sets, why) in bad.items():
        with pytest.raises(ConfigError, match=why) as exc:
            load_state(path, sets, n_contexts=4 if name != "other contexts" else 6)
        assert "\n" not in str(exc.value)
    (tmp_path / "junk.json").write_text("[1, 2")
    with pytest.raises(ConfigError, match="is not a bandit state"):
        load_state(tmp_path / "junk.json", SETS)
    with pytest.raises(ConfigError, match="arms"):
        save_state(tmp_path / "x.json", ThompsonBandit(2, 4), SETS)


def test_bad_bandit_command_lines_fail_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    day = generate_day(date=DATE, n_events=500, seed=1, mode="l3")
    TickStore(store).write(day.instrument, DATE, day.events)
    fm = model().save(tmp_path / "m.npz")
    sets = tmp_path / "sets.json"
    sets.write_text(json.dumps(SETS))
    (tmp_path / "bad.json").write_text('{"max_position": 1}')
    base = ["live", "--store", store, "--venue", "SIM", "--symbol", "SYN",
            "--date", DATE.isoformat(), "--feed", "itch://127.0.0.1:1", "--paper"]
    cases = [
        ([*base, "one_tick_mm", "--bandit", str(sets)], "--feature-model"),
        ([*base, "a=one_tick_mm", "b=one_tick_mm", "--bandit", str(sets), "--feature-model",
          str(fm)], "one strategy"),
        ([*base, "one_tick_mm", "--bandit", str(tmp_path / "bad.json"), "--feature-model",
          str(fm)], "non-empty JSON list"),
        ([*base, "one_tick_mm", "--bandit", str(tmp_path / "none.json"), "--feature-model",
          str(fm)], "cannot read it"),
        ([*base, "one_tick_mm", "--bandit", str(sets), "--feature-model", str(fm),
          "--bandit-epoch", "0s"], "positive duration"),
        ([*base, "one_tick_mm", "--bandit", str(sets), "--feature-model", str(fm),
          "--bandit-state", str(tmp_path / "bad.json")], "is not a bandit state"),
        ([*base, "one_tick_mm", "--bandit", str(sets), "--feature-model", str(fm),
          "--param", "max_position=x"], "max_position"),
        ([*base, "one_tick_mm", "--bandit-state", str(tmp_path / "s.json")],
         "belong to a --bandit"),
    ]
    for argv, why in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, (argv, err)
        assert why in err[0], (argv, err)
    assert read_sets(sets) == SETS
