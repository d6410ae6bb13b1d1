"""The planner as a pure function: every rule of the plan, and its edges."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mila.model import ActionKind, Environment, Record, Status, Workspace
from mila.planner import plan_deployment, plan_removal

ENV = Environment("dev", ("eu-west-1", "us-east-1"))


def svc(name: str, deps: tuple[str, ...] = (), regions: tuple[str, ...] | None = None) -> Workspace:
    return Workspace(name=name, path=f"services/{name}", kind="service", depends_on=deps,
                     deployer="test", regions=regions)


def rec(service: str, region: str, checksum: str | None, status: Status = Status.SUCCEEDED,
        deps: tuple[str, ...] = ()) -> Record:
    return Record("dev", service, region, checksum, status, "test", stack_name=f"shop-{service}-dev",
                  depends_on=deps)


def sums(services: list[Workspace], value: str = "c1") -> dict[tuple[str, str], str]:
    return {(s.name, r): value for s in services for r in (s.regions or ENV.regions)}


def kinds(plan) -> dict[tuple[str, str], ActionKind]:
    return {a.key: a.kind for a in plan.actions}


def test_no_record_is_first_deploy_and_same_checksum_is_no_changes() -> None:
    services = [svc("api"), svc("web")]
    records = [rec("api", "eu-west-1", "c1"), rec("api", "us-east-1", "old")]
    plan = plan_deployment(ENV, services, sums(services), records)
    assert kinds(plan) == {
        ("api", "eu-west-1"): ActionKind.NO_CHANGES,
        ("api", "us-east-1"): ActionKind.DEPLOY,
        ("web", "eu-west-1"): ActionKind.FIRST_DEPLOY,
        ("web", "us-east-1"): ActionKind.FIRST_DEPLOY,
    }
    deploy = next(a for a in plan.actions if a.key == ("api", "us-east-1"))
    assert deploy.previous_checksum == "old" and deploy.checksum == "c1"


def test_same_checksum_but_last_action_failed_or_in_progress_redeploys() -> None:
    services = [svc("api")]
    for status in (Status.FAILED, Status.IN_PROGRESS):
        records = [rec("api", r, "c1", status) for r in ENV.regions]
        assert set(kinds(plan_deployment(ENV, services, sums(services), records)).values()) == {
            ActionKind.DEPLOY}


def test_record_that_never_succeeded_is_first_deploy() -> None:
    services = [svc("api")]
    records = [rec("api", "eu-west-1", None, Status.FAILED)]
    assert kinds(plan_deployment(ENV, services, sums(services), records))[("api", "eu-west-1")] \
        is ActionKind.FIRST_DEPLOY


def test_force_turns_no_changes_into_deploy_only() -> None:
    services = [svc("api"), svc("web")]
    records = [rec("api", r, "c1") for r in ENV.regions]
    plan = plan_deployment(ENV, services, sums(services), records, force=True)
    assert kinds(plan)[("api", "eu-west-1")] is ActionKind.DEPLOY
    assert kinds(plan)[("web", "eu-west-1")] is ActionKind.FIRST_DEPLOY


def test_service_regions_override_the_environment() -> None:
    services = [svc("edge", regions=("us-east-1",))]
    plan = plan_deployment(ENV, services, sums(services), [])
    assert list(kinds(plan)) == [("edge", "us-east-1")]


def test_removed_service_and_removed_region_are_destroyed_with_record_data() -> None:
    services = [svc("api", regions=("eu-west-1",))]
    records = [rec("api", "eu-west-1", "c1"), rec("api", "us-east-1", "c1"),
               rec("gone", "eu-west-1", "g1")]
    plan = plan_deployment(ENV, services, sums(services), records)
    k = kinds(plan)
    assert k[("api", "us-east-1")] is ActionKind.DESTROY
    assert k[("gone", "eu-west-1")] is ActionKind.DESTROY
    gone = next(a for a in plan.actions if a.service == "gone")
    assert gone.stack_name == "shop-gone-dev" and gone.deployer == "test"
    assert gone.previous_checksum == "g1" and gone.checksum is None


def test_only_restricts_deploys_and_destroys() -> None:
    services = [svc("api"), svc("web")]
    records = [rec("gone", "eu-west-1", "g")]
    plan = plan_deployment(ENV, services, sums(services), records, only={"api"})
    assert {a.service for a in plan.actions} == {"api"}
    plan = plan_deployment(ENV, services, sums(services), records, only={"gone"})
    assert kinds(plan) == {("gone", "eu-west-1"): ActionKind.DESTROY}


def test_detect_change_hook_overrides_deploy_and_no_changes_only() -> None:
    services = [svc("api"), svc("web")]
    records = [rec("api", r, "c1") for r in ENV.regions]
    plan = plan_deployment(ENV, services, sums(services), records,
                           detect_change=lambda s, r, cur, prev: "deploy")
    assert kinds(plan)[("api", "eu-west-1")] is ActionKind.DEPLOY
    assert kinds(plan)[("web", "eu-west-1")] is ActionKind.FIRST_DEPLOY


def test_edges_follow_dependencies_in_the_same_region_and_destroys_come_last() -> None:
    services = [svc("shared"), svc("api", deps=("shared",))]
    records = [rec("old", "eu-west-1", "x", deps=("older",)), rec("older", "eu-west-1", "y")]
    plan = plan_deployment(ENV, services, sums(services), records)
    assert plan.edges[("api", "eu-west-1")] == (("shared", "eu-west-1"),)
    assert plan.edges[("shared", "us-east-1")] == ()
    # a destroy waits for its own dependents only: none for "old", unrelated deploys run freely
    assert plan.edges[("old", "eu-west-1")] == ()
    # "old" depended on "older": it is destroyed first
    assert plan.edges[("older", "eu-west-1")] == (("old", "eu-west-1"),)


def test_a_destroy_waits_for_the_deploy_of_a_former_dependent_in_its_region_only() -> None:
    services = [svc("api"), svc("web")]
    records = [rec("api", r, "old", deps=("legacy",)) for r in ENV.regions] + \
        [rec("legacy", r, "x") for r in ENV.regions]
    plan = plan_deployment(ENV, services, sums(services), records)
    for region in ENV.regions:
        assert plan.edges[("legacy", region)] == (("api", region),)


def test_a_consumer_of_a_first_deploy_is_redeployed_outputs_known_after_apply() -> None:
    services = [svc("queue"), svc("topic", deps=("queue",)), svc("other", deps=("queue",))]
    records = [rec("topic", r, "c1") for r in ENV.regions] + \
        [rec("other", r, "c1") for r in ENV.regions]
    plan = plan_deployment(ENV, services, sums(services), records,
                           consumes={"topic": {"queue"}})
    topic = next(a for a in plan.actions if a.key == ("topic", "eu-west-1"))
    assert topic.kind is ActionKind.DEPLOY and topic.reason == "outputs of queue known after apply"
    assert plan.edges[("topic", "eu-west-1")] == (("queue", "eu-west-1"),)
    assert kinds(plan)[("other", "eu-west-1")] is ActionKind.NO_CHANGES  # consumes nothing


def test_scope_restricts_services_with_their_own_regions_too() -> None:
    services = [svc("api"), svc("pinned", regions=("eu-west-1",))]
    records = [rec("api", "eu-west-1", "c1"), rec("pinned", "eu-west-1", "c1")]
    plan = plan_deployment(ENV, services, sums(services), records, scope={"us-east-1"})
    assert kinds(plan) == {("api", "us-east-1"): ActionKind.FIRST_DEPLOY}


def test_no_changes_rows_have_no_edges_and_do_not_block() -> None:
    services = [svc("shared"), svc("api", deps=("shared",))]
    records = [rec("shared", r, "c1") for r in ENV.regions]
    plan = plan_deployment(ENV, services, sums(services), records)
    assert ("shared", "eu-west-1") not in plan.edges
    assert plan.edges[("api", "eu-west-1")] == ()


def test_plan_removal_destroys_every_record_or_the_selection() -> None:
    records = [rec("api", "eu-west-1", "a"), rec("web", "us-east-1", "w")]
    assert {a.key for a in plan_removal(ENV, records).actions} == {
        ("api", "eu-west-1"), ("web", "us-east-1")}
    plan = plan_removal(ENV, records, only={"web"})
    assert [a.kind for a in plan.actions] == [ActionKind.DESTROY]
    assert plan_removal(ENV, records, regions={"eu-west-1"}).actions[0].service == "api"


names = st.sampled_from(["a", "b", "c", "d", "e"])


@settings(max_examples=200, deadline=None)
@given(
    present=st.sets(names, min_size=1),
    recorded=st.dictionaries(st.tuples(names, st.sampled_from(ENV.regions)),
                             st.tuples(st.sampled_from(["c1", "c2", None]),
                                       st.sampled_from(list(Status)[:3]))),
    force=st.booleans(),
)
def test_plan_invariants(present: set[str], recorded: dict, force: bool) -> None:
    services = [svc(n) for n in sorted(present)]
    records = [rec(s, r, c, st_) for (s, r), (c, st_) in recorded.items()]
    plan = plan_deployment(ENV, services, sums(services), records, force=force)
    k = kinds(plan)
    # one row per (service in code × region) plus one per record left behind, no duplicates
    assert len(k) == len(plan.actions)
    expected = {(s, r) for s in present for r in ENV.regions} | set(recorded)
    assert set(k) == expected
    for key, kind in k.items():
        record = recorded.get(key)
        if key[0] not in present:
            assert kind is ActionKind.DESTROY
        elif record is None or record[0] is None:
            assert kind is ActionKind.FIRST_DEPLOY
        elif record == ("c1", Status.SUCCEEDED) and not force:
            assert kind is ActionKind.NO_CHANGES
        else:
            assert kind is ActionKind.DEPLOY
