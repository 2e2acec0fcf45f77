"""The pybullet driver on its own: reachability and IK error, and the limits it enforces
itself, whatever path a call came by (no gate, no hook in these tests)."""

from __future__ import annotations

import itertools
import math

import pytest

from llmos_robo.config import BoxZone, RoboConfig
from llmos_robo.driver import Action, RobotDriver, load_driver
from llmos_robo.safety import Envelope, SafetyViolation

REACHABLE = [(0.45, 0.0, 0.35), (0.6, 0.15, 0.2), (0.55, -0.25, 0.08), (0.3, -0.3, 0.45),
             (0.7, 0.2, 0.1), (0.5, 0.0, 0.03)]


@pytest.fixture
def engaged() -> list[bool]:
    return [False]


def connect(cfg: RoboConfig, engaged: list[bool]):
    from llmos_robo.driver import Limits

    driver = load_driver("pybullet")
    driver.connect(Limits(Envelope.from_config(cfg)), cfg.scene, None, lambda: engaged[0])
    driver.place_home(cfg.home, 0.0)
    return driver


@pytest.fixture
def driver(engaged):
    d = connect(RoboConfig(max_step_m=1.0), engaged)
    yield d
    d.disconnect()


def test_the_driver_implements_the_protocol_and_reports_the_panda_joint_limits(driver):
    assert isinstance(driver, RobotDriver)
    joints = driver.limits.joints
    assert [j.name for j in joints] == [f"panda_joint{i}" for i in range(1, 8)]
    assert joints[3].upper == 0.0 and joints[3].lower < -3.0
    assert all(j.max_velocity > 0 for j in joints)
    assert set(driver.action_schema["properties"]) == {"position", "yaw", "gripper"}
    obs = driver.get_observation()
    assert set(obs) == {"joints", "gripper", "objects"}
    assert math.dist(obs["gripper"]["position"], RoboConfig().home) < 0.003


@pytest.mark.parametrize("target", REACHABLE)
def test_reachable_targets_are_reached_within_5_mm(driver, target):
    applied = driver.send_action(Action(target, yaw=math.radians(30)))
    assert applied.settled and not applied.stopped and applied.clipped == []
    pos, yaw = driver.ee_pose()
    assert math.dist(pos, target) < 0.005, (pos, target)
    assert abs(math.degrees(yaw) - 30) < 2
    # what the driver reports is where the simulated gripper really is
    assert math.dist(applied.reached, pos) < 0.001


def test_across_the_workspace_every_target_is_reached_within_10_mm_or_refused(engaged):
    cfg = RoboConfig(max_step_m=2.0, forbidden_zones=[])
    d = connect(cfg, engaged)
    reached = refused = 0
    try:
        for x, y, z in itertools.product((0.3, 0.5, 0.7), (-0.4, 0.0, 0.4), (0.03, 0.3, 0.6)):
            d.send_action(Action(cfg.home))
            try:
                applied = d.send_action(Action((x, y, z)))
            except SafetyViolation as exc:
                assert exc.rule == "robo.unreachable", exc
                refused += 1
                continue
            assert applied.error_m <= 0.010, ((x, y, z), applied.reached)
            assert math.dist(d.ee_pose()[0], (x, y, z)) <= 0.010
            reached += 1
    finally:
        d.disconnect()
    assert reached >= 15  # most of the box is reachable (18 of these 27 points today)


def test_a_target_inside_the_box_but_out_of_reach_is_refused_before_moving(driver):
    before = driver.get_observation()
    with pytest.raises(SafetyViolation) as caught:
        driver.send_action(Action((0.75, 0.45, 0.65)))
    assert caught.value.rule == "robo.unreachable"
    assert "the arm cannot follow the straight path to [0.75, 0.45, 0.65]" in str(caught.value)
    assert driver.get_observation() == before


def test_the_driver_clips_a_target_outside_the_box_and_a_long_step(engaged):
    d = connect(RoboConfig(max_step_m=0.1), engaged)
    try:
        start, _ = d.ee_pose()
        applied = d.send_action(Action((0.45, 0.0, 2.0)))
        assert applied.commanded.position[2] == pytest.approx(start[2] + 0.1, abs=1e-3)
        assert any(c.startswith("workspace: target clipped") for c in applied.clipped)
        assert any(c.startswith("max-step") for c in applied.clipped)
        assert d.ee_pose()[0][2] == pytest.approx(start[2] + 0.1, abs=0.005)
    finally:
        d.disconnect()


def test_the_driver_refuses_a_path_through_a_zone_and_does_not_move(engaged):
    wall = BoxZone(name="wall", min=(0.4, 0.1, 0.0), max=(0.5, 0.15, 0.6))
    d = connect(RoboConfig(max_step_m=1.0, forbidden_zones=[wall]), engaged)
    try:
        before = d.get_observation()
        # both end points are clear of the wall; the straight line between them is not
        with pytest.raises(SafetyViolation) as caught:
            d.send_action(Action((0.45, 0.3, 0.35)))
        assert caught.value.rule == "robo.forbidden-zone"
        assert "'wall'" in str(caught.value)
        assert d.get_observation() == before
    finally:
        d.disconnect()


def test_the_driver_refuses_every_action_while_the_estop_is_engaged(driver, engaged):
    engaged[0] = True
    before = driver.get_observation()
    for action in (Action((0.5, 0.1, 0.3)), Action(gripper="close")):
        with pytest.raises(SafetyViolation) as caught:
            driver.send_action(action)
        assert caught.value.rule == "robo.estop"
    assert driver.get_observation() == before


def test_stop_from_another_thread_halts_a_move_and_holds_position(engaged):
    import threading

    d = connect(RoboConfig(max_step_m=1.0, max_speed_m_s=0.05), engaged)
    try:
        start, _ = d.ee_pose()
        target = (0.45, -0.3, 0.35)
        timer = threading.Thread(target=lambda: (_wait_moved(d, start), d.stop()))
        timer.start()
        applied = d.send_action(Action(target))
        timer.join()
        assert applied.stopped and not applied.settled
        here, _ = d.ee_pose()
        assert math.dist(here, start) > 0.003 and math.dist(here, target) > 0.05
        for _ in range(120):
            d._step()
        assert math.dist(d.ee_pose()[0], here) < 0.003  # it holds where it stopped
    finally:
        d.disconnect()


def _wait_moved(d, start) -> None:
    import time

    while math.dist(d.ee_pose()[0], start) < 0.01:
        time.sleep(0.001)


def test_the_gripper_never_moves_faster_than_max_speed(engaged):
    d = connect(RoboConfig(max_step_m=1.0, max_speed_m_s=0.1), engaged)
    samples: list[tuple[int, tuple[float, ...]]] = []
    d.set_observer(lambda: samples.append((d.sim_steps, d.ee_pose()[0])))
    try:
        applied = d.send_action(Action((0.45, -0.2, 0.35)))
        assert applied.settled
        assert applied.sim_steps >= 0.2 / 0.1 * 240  # at least distance / speed of sim time
        speeds = [math.dist(p1, p0) / ((s1 - s0) / 240)
                  for (s0, p0), (s1, p1) in itertools.pairwise(samples) if s1 > s0]
        assert len(speeds) > 20
        assert max(speeds) <= 0.1 * 1.1
        assert max(speeds) > 0.08  # and it does travel near the limit
    finally:
        d.disconnect()


def test_a_snapshot_restores_the_same_world(driver, engaged):
    driver.send_action(Action((0.6, 0.1, 0.2)))
    snap = driver.snapshot()
    other = load_driver("pybullet")
    from llmos_robo.driver import Limits

    cfg = RoboConfig(max_step_m=1.0)
    other.connect(Limits(Envelope.from_config(cfg)), cfg.scene, snap, lambda: False)
    try:
        assert other.get_observation() == driver.get_observation()
    finally:
        other.disconnect()
