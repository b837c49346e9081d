"""The one observer hub: named events only, keyword arguments only, observers' failures logged."""

from __future__ import annotations

import logging

import pytest

from faultlab.hub import EVENTS, Hub


def test_an_unknown_event_is_refused_at_publish_with_the_nearest_name():
    hub = Hub()
    with pytest.raises(ValueError, match="unknown event 'faults'; did you mean 'fault'"):
        hub.publish("faults", state="active")


def test_an_argument_the_event_does_not_take_is_refused():
    with pytest.raises(ValueError, match="event 'fault' has no argument stat; it takes"):
        Hub().publish("fault", stat="active")


def test_a_failing_observer_is_logged_and_the_others_still_hear(caplog):
    heard: list[dict] = []

    def broken(**kwargs):
        raise RuntimeError("observer bug")

    hub = Hub([broken, lambda **kw: heard.append(kw)])
    with caplog.at_level(logging.ERROR, logger="faultlab.hub"):
        hub.publish("decision", what="abort", why="success rate 10% below 20%")
    assert heard == [{"event": "decision", "what": "abort", "why": "success rate 10% below 20%"}]
    assert "observer bug" in caplog.text and "'decision'" in caplog.text


def test_subscribe_for_some_events_and_share_one_hub():
    hub = Hub()
    samples: list[object] = []
    everything: list[str] = []
    hub.subscribe(lambda sample, **_: samples.append(sample), events=["sample"])
    hub.subscribe(lambda event, **_: everything.append(event))
    assert Hub.of(hub) is hub
    hub.publish("phase", name="load", state="begin")
    hub.publish("sample", sample="s1")
    assert samples == ["s1"] and everything == ["phase", "sample"]
    with pytest.raises(ValueError, match="did you mean 'monitor'"):
        hub.subscribe(print, events=["monitr"])


def test_plain_callables_become_a_hub_and_every_event_is_documented():
    import faultlab.hub

    heard: list[str] = []
    hub = Hub.of([lambda event, **_: heard.append(event)])
    hub.publish("run", state="begin")
    assert heard == ["run"]
    for name, event in EVENTS.items():
        assert f"``{name}``" in (faultlab.hub.__doc__ or ""), f"event {name} is not documented"
        for argument in event.arguments:
            assert f"``{argument}``" in (faultlab.hub.__doc__ or ""), f"{name}: {argument} is not documented"
