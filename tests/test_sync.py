"""Sync status from istiod's /debug/syncz and captured istioctl proxy-status output, and the
verdicts on a waypoint built from it."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_waypoint import envoystats
from kubectl_waypoint.envoystats import read_proxy_xds
from kubectl_waypoint.errors import BadInput
from kubectl_waypoint.kube.client import Cluster
from kubectl_waypoint.kube.config import ClusterFlags, resolve_target
from kubectl_waypoint.sim import SimCluster
from kubectl_waypoint.sim.envoystats import envoy_stats_lines
from kubectl_waypoint.sim.scenario import Scenario
from kubectl_waypoint.sim.syncz import syncz_entries
from kubectl_waypoint.sync import (
    DebugEndpointOff,
    ProxySync,
    judge_proxy_xds,
    judge_waypoint_sync,
    parse_istiod_version,
    parse_proxy_status,
    parse_syncz,
    short_type_name,
)
from kubectl_waypoint.versions import parse_version

FIXTURES = Path(__file__).parent / "fixtures" / "sync"
SYNCED, STALE, NOT_SENT, IGNORED, ERROR = "SYNCED", "STALE", "NOT SENT", "IGNORED", "ERROR"
CORE5 = ("CDS", "LDS", "EDS", "RDS", "ECDS")


def states(*values: str) -> dict[str, str]:
    """Per-type states in the 1.20-1.26 column order CDS LDS EDS RDS ECDS."""
    return dict(zip(CORE5, values))


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


def summary(record: ProxySync) -> tuple:
    return (record.proxy, record.pod, record.namespace, record.cluster, record.istiod,
            record.version, record.proxy_type, record.types, record.subscribed, record.errors)


def sidecar_row(proxy, cluster, istiod, version, types, subscribed, namespace=""):
    return (proxy, proxy, namespace, cluster, istiod, version, None, types, subscribed, ())


# Istio's own writer testdata: the same four proxies rendered by each istioctl release.
MULTI_PILOT_TABLE = [
    sidecar_row("proxy1", "cluster1", "istiod1", "1.20",
                states(STALE, SYNCED, SYNCED, NOT_SENT, SYNCED), ("CDS", "LDS", "EDS", "ECDS")),
    sidecar_row("proxy2", "cluster2", "istiod2", "1.19",
                states(STALE, SYNCED, STALE, SYNCED, STALE), CORE5),
    sidecar_row("proxy3", "cluster3", "istiod3", "1.20",
                states(NOT_SENT, ERROR, STALE, NOT_SENT, NOT_SENT), ("LDS", "EDS")),
    sidecar_row("proxy4", "cluster4", "istiod4", "1.20", states(*[IGNORED] * 5), ()),
]
SINGLE_PILOT_TABLE = [
    sidecar_row("proxy1", "cluster1", "istiod1", "1.20",
                states(STALE, SYNCED, SYNCED, NOT_SENT, NOT_SENT), ("CDS", "LDS", "EDS")),
    sidecar_row("proxy2", "cluster2", "istiod1", "1.20",
                states(STALE, SYNCED, STALE, SYNCED, NOT_SENT), ("CDS", "LDS", "EDS", "RDS")),
]
PROXY1_STATES = states(STALE, SYNCED, SYNCED, NOT_SENT, SYNCED)
SAMPLES = {
    "1.20.0-multiXdsStatusMultiPilot.txt": MULTI_PILOT_TABLE,
    "1.22.0-multiXdsStatusMultiPilot.txt": MULTI_PILOT_TABLE,
    "1.20.0-multiXdsStatusSinglePilot.txt": SINGLE_PILOT_TABLE,
    "1.22.0-multiXdsStatusSinglePilot.txt": SINGLE_PILOT_TABLE,
    "1.27.0-multiXdsStatusMultiPilot.txt": [
        sidecar_row("proxy1", "cluster1", "istiod1", "1.20", {}, CORE5),
        sidecar_row("proxy2", "cluster2", "istiod2", "1.19", {}, CORE5),
        sidecar_row("proxy3", "cluster3", "istiod3", "1.20", {}, CORE5),
        sidecar_row("proxy4", "cluster4", "istiod4", "1.20", {}, ()),
    ],
    "1.27.0-multiXdsStatusSinglePilot.txt": [
        sidecar_row("proxy1", "cluster1", "istiod1", "1.20", {}, CORE5),
        sidecar_row("proxy2", "cluster2", "istiod1", "1.20", {}, CORE5),
    ],
    # Columns CDS ECDS EDS LDS RDS: the states must land on the right types all the same.
    "1.27.0-multiXdsStatusMultiPilot_verbose.txt": [
        sidecar_row("proxy1", "cluster1", "istiod1", "1.20", PROXY1_STATES,
                    ("CDS", "LDS", "EDS", "ECDS")),
    ],
    "1.30-dev-multiXdsStatusSinglePilot.json": [
        sidecar_row("proxy1", "cluster1", "istiod1", "1.20", PROXY1_STATES,
                    ("CDS", "LDS", "EDS", "ECDS")),
    ],
    "1.30-dev-multiXdsStatusSingleNamespace.yaml": [
        sidecar_row("proxy1", "cluster1", "istiod1", "1.20", PROXY1_STATES,
                    ("CDS", "LDS", "EDS", "ECDS"), namespace="foo"),
    ],
}


@pytest.mark.parametrize("name", SAMPLES)
def test_every_istioctl_sample_parses_to_exact_records(name):
    assert [summary(r) for r in parse_proxy_status(read(name), name)] == SAMPLES[name]


def test_the_samples_cover_every_file_in_the_reference_folder():
    reference = Path(__file__).resolve().parents[2] / "shared" / "reference" / "istioctl-proxy-status-samples"
    if not reference.is_dir():
        pytest.skip("reference samples not present on this machine")
    shipped = {p.name for p in reference.iterdir() if p.name != "README.md"}
    assert shipped <= set(SAMPLES)
    for name in shipped:
        assert (reference / name).read_bytes() == (FIXTURES / name).read_bytes()


WAYPOINT_ROW = ("waypoint-7b6bcffd55-lj54j.bookinfo", "waypoint-7b6bcffd55-lj54j", "bookinfo",
                "Kubernetes", "istiod-85c76b5b66-qgbrv", "1.28.6-asm-r3", None, {},
                ("CDS", "LDS", "EDS", "WDS"), ())


def test_ambient_table_in_the_1_27_format():
    records = parse_proxy_status(read("1.28-waypoints.txt"), "1.28-waypoints.txt")
    assert [summary(r) for r in records] == [
        ("bookinfo-gateway-istio-6cbd9bcd49-fwqqp.bookinfo",
         "bookinfo-gateway-istio-6cbd9bcd49-fwqqp", "bookinfo", "Kubernetes",
         "istiod-85c76b5b66-qgbrv", "1.28.6-asm-r3", None, {},
         ("CDS", "LDS", "EDS", "RDS"), ()),
        ("productpage-v1-dffc47f64-xqr4n.bookinfo", "productpage-v1-dffc47f64-xqr4n", "bookinfo",
         "Kubernetes", "istiod-85c76b5b66-qgbrv", "1.27.3-asm-r2", None, {},
         ("CDS", "LDS", "EDS", "RDS"), ()),
        WAYPOINT_ROW,
        ("waypoint-84f5d7c9b-2hq7m.payments", "waypoint-84f5d7c9b-2hq7m", "payments", "Kubernetes",
         "istiod-85c76b5b66-tx4zl", "1.28.6-asm-r3", None, {}, (), ()),
        ("ztunnel-x7k2p.istio-system", "ztunnel-x7k2p", "istio-system", "Kubernetes",
         "istiod-85c76b5b66-tx4zl", "1.28.6-asm-r3", None, {}, ("WDS", "WADS"), ()),
    ]


def test_the_procedures_grep_output_without_a_header():
    row = ("waypoint-7b6bcffd55-lj54j.bookinfo     Kubernetes     istiod-85c76b5b66-qgbrv     "
           "1.28.6-asm-r3     4 (CDS,LDS,EDS,WDS)\n")
    assert [summary(r) for r in parse_proxy_status(row)] == [WAYPOINT_ROW]


def test_ages_in_cells_and_an_empty_cluster_cell():
    records = parse_proxy_status(read("1.24-aged-cells.txt"))
    gateway, waypoint, ztunnel = records
    assert gateway.types == states(SYNCED, SYNCED, SYNCED, SYNCED, IGNORED)
    assert waypoint.types == states(SYNCED, STALE, SYNCED, NOT_SENT, IGNORED)
    assert waypoint.subscribed == ("CDS", "LDS", "EDS")
    assert (waypoint.pod, waypoint.namespace, waypoint.version) == (
        "waypoint-5d8f6b7c4-q9w2e", "bookinfo", "1.23.4")
    assert ztunnel.cluster is None
    assert ztunnel.istiod == "istiod-6d9f8c7b5-mk2lp"
    assert ztunnel.subscribed == ()


def test_never_acknowledged_cells_of_older_istioctl_are_stale():
    table = ("NAME       CDS                            LDS        ISTIOD      VERSION\n"
             "p1.ns      STALE (Never Acknowledged)     SYNCED     istiod1     1.10.0\n")
    (record,) = parse_proxy_status(table)
    assert record.types == {"CDS": STALE, "LDS": SYNCED}
    assert record.cluster is None


def test_proxy_status_tables_and_json_agree_on_the_same_proxy():
    """Istio rendered one proxy1 as a 1.20 table, a 1.27 verbose table and 1.30 JSON."""
    renderings = [
        parse_proxy_status(read("1.20.0-multiXdsStatusMultiPilot.txt"))[0],
        parse_proxy_status(read("1.27.0-multiXdsStatusMultiPilot_verbose.txt"))[0],
        parse_proxy_status(read("1.30-dev-multiXdsStatusSinglePilot.json"))[0],
    ]
    assert {json.dumps(r.types, sort_keys=True) for r in renderings} == {
        json.dumps(PROXY1_STATES, sort_keys=True)}


def test_several_istiods_in_json_and_yaml():
    response = json.loads(read("1.30-dev-multiXdsStatusSinglePilot.json"))
    second = json.loads(json.dumps(response).replace('\\"istiod1\\"', '\\"istiod2\\"')
                        .replace('"proxy1"', '"proxy2.default"'))
    for text in (json.dumps([response, second]),
                 json.dumps(response, indent=2) + "\n" + json.dumps(second, indent=2)):
        records = parse_proxy_status(text)
        assert [(r.proxy, r.namespace, r.istiod) for r in records] == [
            ("proxy1", "", "istiod1"), ("proxy2.default", "default", "istiod2")]
    yaml_text = read("1.30-dev-multiXdsStatusSingleNamespace.yaml")
    records = parse_proxy_status(yaml_text + "---\n" + yaml_text)
    assert [r.proxy for r in records] == ["proxy1", "proxy1"]


# --- /debug/syncz -----------------------------------------------------------------------------


def test_legacy_syncz_derives_types_from_sent_fields():
    records = parse_syncz(read("syncz-legacy.json"), "istiod-7c9d8f6b5-abcde")
    assert [summary(r) for r in records] == [
        ("productpage-v1-6b746f74dc-9stvs.bookinfo", "productpage-v1-6b746f74dc-9stvs", "bookinfo",
         None, "istiod-7c9d8f6b5-abcde", "1.9.5", None,
         states(SYNCED, SYNCED, SYNCED, STALE, NOT_SENT), ("CDS", "LDS", "EDS", "RDS"), ()),
        ("istio-ingressgateway-7d8f5b9c6d-h4k2x.istio-system",
         "istio-ingressgateway-7d8f5b9c6d-h4k2x", "istio-system", "Kubernetes",
         "istiod-7c9d8f6b5-abcde", "1.20.8", "router",
         states(SYNCED, SYNCED, SYNCED, SYNCED, NOT_SENT), ("CDS", "LDS", "EDS", "RDS"), ()),
    ]


def test_recent_syncz_takes_types_and_errors_from_resources():
    waypoint, idle, sidecar, ztunnel = parse_syncz(
        read("syncz-recent.json").encode(), "istiod-85c76b5b66-qgbrv")
    assert summary(waypoint) == (
        "waypoint-7b6bcffd55-lj54j.bookinfo", "waypoint-7b6bcffd55-lj54j", "bookinfo", "Kubernetes",
        "istiod-85c76b5b66-qgbrv", "1.28.6-asm-r3", "waypoint",
        {"CDS": SYNCED, "LDS": SYNCED, "EDS": SYNCED, "WDS": SYNCED},
        ("CDS", "LDS", "EDS", "WDS"), ())
    assert list(waypoint.types) == ["CDS", "LDS", "EDS", "WDS"]
    # No resources and nothing sent: connected, subscribed to nothing.
    assert (idle.proxy_type, idle.subscribed, idle.version) == ("waypoint", (), "1.27.3-asm-r2")
    assert sidecar.types == {"CDS": SYNCED, "LDS": ERROR, "EDS": SYNCED, "RDS": STALE,
                             "ECDS": NOT_SENT}
    assert sidecar.subscribed == CORE5
    assert sidecar.errors == (
        "LDS: Error adding/updating listener(s) 0.0.0.0_9080: unknown filter "
        "'envoy.filters.http.example'",)
    future = "type.googleapis.com/istio.example.v1.FutureType"
    assert ztunnel.types == {"WDS": SYNCED, "WADS": SYNCED, future: SYNCED}
    assert ztunnel.subscribed == ("WDS", "WADS", future)


def test_pod_names_may_hold_dots_but_namespaces_never_do():
    (record,) = parse_syncz('[{"proxy": "web.v2.canary-0.team-a"}]', "istiod-1")
    assert (record.pod, record.namespace) == ("web.v2.canary-0", "team-a")


def test_empty_syncz_means_no_proxies():
    assert parse_syncz("[]\n", "istiod-1") == []


@pytest.mark.parametrize("url, short", [
    ("type.googleapis.com/envoy.config.cluster.v3.Cluster", "CDS"),
    ("type.googleapis.com/envoy.config.listener.v3.Listener", "LDS"),
    ("type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "RDS"),
    ("type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", "EDS"),
    ("type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig", "ECDS"),
    ("type.googleapis.com/istio.workload.Address", "WDS"),
    ("type.googleapis.com/istio.workload.Workload", "WDS"),
    ("type.googleapis.com/istio.security.Authorization", "WADS"),
    ("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret", "SDS"),
    ("type.googleapis.com/istio.networking.nds.v1.NameTable", "NDS"),
    ("type.googleapis.com/istio.mesh.v1alpha1.ProxyConfig", "PCDS"),
    ("istio.io/debug/syncz", "istio.io/debug/syncz"),
])
def test_short_type_name(url, short):
    assert short_type_name(url) == short


# --- bad input --------------------------------------------------------------------------------

GOOD_TABLE = read("1.22.0-multiXdsStatusSinglePilot.txt")


@pytest.mark.parametrize("text, expected", [
    ("", "ps.txt is empty"),
    ("  \n\n", "ps.txt is empty"),
    (GOOD_TABLE[:GOOD_TABLE.index("NOT SENT")], "ps.txt line 2 has no RDS value"),
    (GOOD_TABLE.replace("proxy2     cluster2", "proxy2    cluster2 "),
     "ps.txt line 3 does not line up with the header's CLUSTER column"),
    (GOOD_TABLE.replace("SYNCED     SYNCED  ", "SYNCD      SYNCED  ", 1),
     "ps.txt line 2: the LDS cell 'SYNCD'"),
    (GOOD_TABLE.replace("ECDS", "ECDZ!"), "ps.txt line 1: unknown column 'ECDZ!'"),
    ("NAME     CLUSTER     ISTIOD     VERSION\n", "neither xDS type columns nor SUBSCRIBED TYPES"),
    (GOOD_TABLE.split("\n", 1)[1], "ps.txt line 1 is a proxy-status row without the NAME header"),
    (read("1.28-waypoints.txt").replace("4 (CDS,LDS,EDS,WDS)", "5 (CDS,LDS,EDS,WDS)"),
     "ps.txt line 4: the SUBSCRIBED TYPES cell '5 (CDS,LDS,EDS,WDS)'"),
    ("Error: failed to get proxy infos: context deadline exceeded\n",
     "ps.txt line 1 ('Error: failed to get proxy infos: contex...') is not istioctl "
     "proxy-status output"),
    (read("1.28-waypoints.txt").split("\n", 1)[1] + "Warning: 1 istiod did not answer\n",
     "ps.txt line 6 is a proxy-status row without the NAME header"),
    (read("1.30-dev-multiXdsStatusSinglePilot.json")[:200], "ps.txt is not valid JSON"),
    (read("syncz-recent.json"), "ps.txt, document 1 is not istioctl proxy-status output"),
    ("resources: [unclosed\n", "ps.txt is not valid YAML"),
    ("controlPlane: 2024-13-45\n", "ps.txt is not valid YAML"),
    (read("1.30-dev-multiXdsStatusSingleNamespace.yaml").replace("SYNCED", "GREEN", 1),
     "unknown configStatus 'GREEN'"),
    (read("1.30-dev-multiXdsStatusSingleNamespace.yaml").replace('"1.20"', "1.20"),
     "field 'ISTIO_VERSION' should be text but is float"),
])
def test_unreadable_proxy_status_names_the_file_and_line(text, expected):
    with pytest.raises(BadInput) as raised:
        parse_proxy_status(text, "ps.txt")
    assert expected in raised.value.message
    assert "\n" not in raised.value.message


@pytest.mark.parametrize("payload, expected", [
    ("", "is empty"),
    ("404 page not found\n", "is '404 page not found': istiod's debug endpoint is off (ENABLE_DEBUG_ON_HTTP=false)"),
    ("<!DOCTYPE html><html><body>Bad Gateway</body></html>", "is an HTML page, not JSON"),
    (b"\xff\xfe\x00garbage", "is not JSON"),
    ('[{"proxy": "a.b"', "is not JSON"),
    ("error: pilot-discovery: connection refused", "is not JSON"),
    ('{"proxy": "a.b"}', "should be a list of proxies but is dict"),
    ('[{"cluster_sent": "x"}]', "entry 0 names no proxy"),
    ('["a.b"]', "entry 0 should be an object"),
    ('[{"proxy": "a.b", "cluster_sent": 7}]', "field 'cluster_sent' should be text but is int"),
    ('[{"proxy": "a.b", "resources": {"t": "SYNCED"}}]', "should be an object but is str"),
])
def test_unreadable_syncz_names_the_istiod_pod(payload, expected):
    with pytest.raises(BadInput) as raised:
        parse_syncz(payload, "istiod-85c76b5b66-qgbrv")
    assert "istiod pod istiod-85c76b5b66-qgbrv" in raised.value.message
    assert expected in raised.value.message


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["proxy", "resources", "sent", "acked", "lastError",
                                       "istio_version", "cluster_sent", "node", "id", "@type",
                                       "genericXdsConfigs", "typeUrl", "configStatus",
                                       "metadata", "controlPlane", "identifier"])
                      | st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
table_lines = st.lists(st.text(alphabet="abc.-_ ()0123456789SYNCEDTALOI,", max_size=60), max_size=5)


def parses_or_refuses(parse, *args):
    try:
        records = parse(*args)
    except BadInput as error:
        assert error.message and "\n" not in error.message
    else:
        assert all(isinstance(record, ProxySync) for record in records)


@FUZZ
@given(st.text())
def test_arbitrary_text_gives_records_or_bad_input(text):
    parses_or_refuses(parse_proxy_status, text, "fuzz.txt")
    parses_or_refuses(parse_syncz, text, "istiod-1")


@FUZZ
@given(st.sampled_from([GOOD_TABLE.split("\n")[0], read("1.28-waypoints.txt").split("\n")[0]]),
       table_lines)
def test_tables_with_arbitrary_rows_give_records_or_bad_input(header, rows):
    parses_or_refuses(parse_proxy_status, "\n".join([header, *rows]), "fuzz.txt")


@FUZZ
@given(json_values)
def test_arbitrary_json_gives_records_or_bad_input(value):
    text = json.dumps(value)
    parses_or_refuses(parse_syncz, text, "istiod-1")
    parses_or_refuses(parse_syncz, json.dumps([value]), "istiod-1")
    parses_or_refuses(parse_proxy_status, json.dumps({"resources": [value]}), "fuzz.json")
    parses_or_refuses(parse_proxy_status, "resources:\n- " + text, "fuzz.yaml")


# --- judging a waypoint -----------------------------------------------------------------------

CP_1_28 = parse_version("1.28.6-asm-r3")


def recent_waypoint(**changes) -> ProxySync:
    record = parse_syncz(read("syncz-recent.json"), "istiod-85c76b5b66-qgbrv")[0]
    return dataclasses.replace(record, **changes)


def judge(sync, control_plane=CP_1_28):
    findings = judge_waypoint_sync(sync, "waypoint-7b6bcffd55-lj54j", "bookinfo", control_plane)
    return [(f.status, f.message) for f in findings], findings


def test_a_healthy_waypoint_passes_both_findings():
    verdicts, findings = judge(recent_waypoint())
    assert verdicts == [
        ("pass", "Waypoint bookinfo/waypoint-7b6bcffd55-lj54j is connected to "
                 "istiod-85c76b5b66-qgbrv and in sync for CDS, LDS, EDS, WDS."),
        ("pass", "Waypoint bookinfo/waypoint-7b6bcffd55-lj54j runs 1.28.6-asm-r3, the same minor "
                 "version as the control plane (1.28.6-asm-r3)."),
    ]
    assert "subscribed types: 4 (CDS,LDS,EDS,WDS)" in findings[0].evidence
    assert "WDS: SYNCED" in findings[0].evidence


def test_the_procedures_row_passes_without_claiming_per_type_state():
    row = ("waypoint-7b6bcffd55-lj54j.bookinfo     Kubernetes     istiod-85c76b5b66-qgbrv     "
           "1.28.6-asm-r3     4 (CDS,LDS,EDS,WDS)")
    verdicts, _ = judge(parse_proxy_status(row)[0], parse_version("1.28.2"))
    assert [status for status, _ in verdicts] == ["pass", "pass"]
    assert verdicts[0][1].endswith("and subscribed to CDS, LDS, EDS, WDS.")


def test_not_connected_fails_alone():
    verdicts, _ = judge(None)
    assert verdicts == [("fail", "Waypoint bookinfo/waypoint-7b6bcffd55-lj54j is not connected to "
                                 "any istiod; check that the pod is running and can reach istiod.")]


def test_connected_but_subscribed_to_nothing_fails():
    idle = parse_proxy_status(read("1.28-waypoints.txt"))[3]
    verdicts, findings = judge(idle)
    assert verdicts[0] == ("fail", "Waypoint bookinfo/waypoint-7b6bcffd55-lj54j is connected to "
                                   "istiod-85c76b5b66-tx4zl but subscribed to nothing, so it holds "
                                   "no configuration.")
    assert "subscribed types: 0" in findings[0].evidence
    assert verdicts[1][0] == "pass"


@pytest.mark.parametrize("changes, missing", [
    ({"subscribed": ("EDS", "WDS"), "types": {"EDS": SYNCED, "WDS": SYNCED}}, "CDS or LDS"),
    ({"subscribed": ("CDS", "EDS", "WDS")}, "LDS"),
    # Subscribed, as recent istiod lists it, yet never sent anything.
    ({"types": {"CDS": NOT_SENT, "LDS": SYNCED, "EDS": SYNCED, "WDS": SYNCED}}, "CDS"),
])
def test_missing_clusters_or_listeners_fail(changes, missing):
    verdicts, _ = judge(recent_waypoint(**changes))
    assert verdicts[0] == ("fail", f"Waypoint bookinfo/waypoint-7b6bcffd55-lj54j has not received "
                                   f"{missing} from istiod-85c76b5b66-qgbrv, so it cannot route "
                                   "traffic.")


def test_stale_types_fail_naming_them():
    aged = parse_proxy_status(read("1.24-aged-cells.txt"))[1]
    verdicts, _ = judge(aged, parse_version("1.24.3"))
    assert verdicts[0] == ("fail", "Waypoint bookinfo/waypoint-7b6bcffd55-lj54j is out of sync "
                                   "with istiod-6d9f8c7b5-mk2lp: LDS STALE.")


def test_rejected_config_fails_with_the_error_as_evidence():
    sidecar_like = parse_syncz(read("syncz-recent.json"), "istiod-85c76b5b66-qgbrv")[2]
    verdicts, findings = judge(sidecar_like)
    assert verdicts[0] == ("fail", "Waypoint bookinfo/waypoint-7b6bcffd55-lj54j is out of sync "
                                   "with istiod-85c76b5b66-qgbrv: LDS ERROR, RDS STALE.")
    assert any(line.startswith("error: LDS: Error adding/updating listener")
               for line in findings[0].evidence)


def test_an_error_without_a_state_still_fails():
    verdicts, _ = judge(recent_waypoint(errors=("CDS: rejected",)))
    assert verdicts[0][0] == "fail"
    assert "1 rejected push(es)" in verdicts[0][1]


@pytest.mark.parametrize("proxy_version, control_plane, status, wording", [
    ("1.28.0", "1.28.6", "pass", "the same minor version as the control plane (1.28.6)"),
    ("1.27.3-asm-r2", "1.28.6-asm-r3", "warn",
     "one minor version behind the control plane (1.28.6-asm-r3): not rolled to the new "
     "version yet; InPlace should roll it"),
    ("1.26.1", "1.28.6", "fail", "2 minor versions behind the control plane"),
    ("1.29.0-rc.0", "1.28.6", "fail", "ahead of the control plane, which Istio never supports"),
    ("2.0.0", "1.28.6", "fail", "a different major version from the control plane"),
])
def test_version_against_the_control_plane(proxy_version, control_plane, status, wording):
    verdicts, findings = judge(recent_waypoint(version=proxy_version), parse_version(control_plane))
    assert verdicts[1][0] == status
    assert wording in verdicts[1][1]
    assert f"proxy version: {proxy_version}" in findings[1].evidence


@pytest.mark.parametrize("version, control_plane, wording", [
    (None, CP_1_28, "its proxy version could not be read"),
    ("unknown", CP_1_28, "its proxy version ('unknown') could not be read"),
    ("1.28.6", None, "the control-plane version is unknown"),
])
def test_unreadable_versions_warn(version, control_plane, wording):
    verdicts, _ = judge(recent_waypoint(version=version), control_plane)
    assert verdicts[1][0] == "warn"
    assert wording in verdicts[1][1]


# --- istiod's debug endpoint off: 404 detected, the waypoints' own Envoy stats instead ----------

BOOTSTRAP = Path(__file__).parent / "fixtures" / "istio-bootstrap"
# How Envoy names each stat the fallback reads, before tag extraction (Prometheus: envoy_ + dots to _).
ENVOY_NAMES = {
    envoystats.CDS_SUCCESS: "cluster_manager.cds.update_success",
    envoystats.CDS_REJECTED: "cluster_manager.cds.update_rejected",
    envoystats.LDS_SUCCESS: "listener_manager.lds.update_success",
    envoystats.LDS_REJECTED: "listener_manager.lds.update_rejected",
    envoystats.SERVER_STATE: "server.state",
    envoystats.XDS_STREAMS: "cluster.xds-grpc.upstream_rq_active",  # tag cluster_name=xds-grpc extracted
    envoystats.BUILD: "component.proxy.tag.1.28.6;.istio_build",  # tags component and tag extracted
}


def istio_inclusion_prefixes(waypoint: bool = True) -> set[str]:
    """The literal prefixes of Istio's bootstrap inclusion list plus the ones config.go always adds."""
    template = (BOOTSTRAP / "envoy_bootstrap.stats_matcher.excerpt").read_text()
    if not waypoint:
        template = re.sub(r"\{\{- if \.metadata_discovery \}\}.*?\{\{- end \}\}", "", template, flags=re.S)
    literal = {p for p in re.findall(r'"prefix": "([^"]+)"', template) if "{{" not in p}
    required = re.search(r'requiredEnvoyStatsMatcherInclusionPrefixes = "([^"]+)"',
                         (BOOTSTRAP / "bootstrap_config.go.excerpt").read_text())[1]
    return literal | set(required.split(","))


def emitted(envoy_name: str) -> bool:
    return any(envoy_name.startswith(prefix) for prefix in istio_inclusion_prefixes())


def test_every_stat_the_fallback_reads_survives_istios_inclusion_list():
    assert "cluster.xds-grpc" in istio_inclusion_prefixes() and "reporter=" in istio_inclusion_prefixes()
    assert all(emitted(name) for name in ENVOY_NAMES.values())
    assert not emitted("control_plane.connected_state")  # Envoy's own connection gauge is filtered out
    assert not emitted("cluster.outbound|9080||reviews.bookinfo.svc.cluster.local.update_success")  # no EDS
    for prometheus, envoy in ENVOY_NAMES.items():
        if prometheus.startswith("envoy_") and "xds-grpc" not in envoy:
            assert prometheus == "envoy_" + envoy.replace(".", "_")
    # pilot-agent's readiness check reads the same counters and state.
    agent = (BOOTSTRAP / "pilot_agent_stats.go.excerpt").read_text()
    for name in (envoystats.CDS_SUCCESS, envoystats.CDS_REJECTED, envoystats.LDS_SUCCESS,
                 envoystats.LDS_REJECTED, envoystats.SERVER_STATE):
        assert f'"{ENVOY_NAMES[name]}"' in agent


def sim_stats(**override) -> str:
    return "\n".join(envoy_stats_lines("waypoint-7b6bcffd55-lj54j", override, "1.28.6-asm-r3")) + "\n"


def test_the_simulated_waypoint_prints_only_stats_a_real_one_emits():
    samples = envoystats.parse_prometheus(sim_stats(), "sim")
    for sample in samples:
        labels = dict(sample.labels)
        if sample.name.startswith("envoy_cluster_") and not sample.name.startswith("envoy_cluster_manager_"):
            assert labels == {"cluster_name": "xds-grpc"}, sample  # no other cluster's stats survive
        else:
            assert sample.name.startswith(("envoy_cluster_manager_", "envoy_listener_manager_", "envoy_server_",
                                           "istio_build")), sample
    text = sim_stats()
    assert "envoy_server_state{} 0" in text and "# TYPE envoy_server_state gauge" in text  # Envoy's layout


@pytest.mark.parametrize("override, status, wording", [
    ({}, "pass", "has an open xDS stream and accepted"),
    ({"disconnected": True}, "fail", "has no open xDS stream"),
    ({"subscribed": []}, "fail", "has never accepted CDS or LDS"),
    ({"subscribed": ["CDS", "EDS"]}, "fail", "has never accepted LDS"),
    ({"lastError": "Proto constraint validation failed"}, "warn", "rejected 1 LDS push(es) since it started"),
    ({"stale": ["CDS"]}, "pass", "EDS, RDS and WDS are not in them"),  # a push in flight is invisible: said so
])
def test_the_waypoints_own_stats_judge_its_sync_state(override, status, wording):
    finding = judge_proxy_xds(read_proxy_xds(sim_stats(**override), "waypoint-7b6bcffd55-lj54j", "bookinfo"))
    assert (finding.status, wording in finding.message) == (status, True), finding.message
    assert "Waypoint bookinfo/waypoint-7b6bcffd55-lj54j" in finding.message
    assert any(line.startswith("open xDS streams") for line in finding.evidence)


def test_an_envoy_that_is_not_live_fails_whatever_its_counters():
    text = sim_stats().replace("envoy_server_state{} 0", "envoy_server_state{} 3")
    finding = judge_proxy_xds(read_proxy_xds(text, "w", "bookinfo"))
    assert finding.status == "fail" and "INITIALIZING, not LIVE" in finding.message


@pytest.mark.parametrize("text, expected", [
    ("404 page not found\n", "answered '404 page not found' instead of Prometheus metrics"),
    ("<html><body>upstream connect error</body></html>", "answered an HTML page instead of Prometheus metrics"),
    ("", "holds no metrics"),
    ("# TYPE envoy_server_state gauge\n", "holds no metrics"),
    ("cluster_manager.cds.update_success: 3\n", "line 1 ('cluster_manager.cds.update_success: 3') is not a Prometheus sample"),
    ('envoy_server_state{cluster_name=xds} 0\n', "line 1"),
    ("envoy_server_state{} zero\n", "is not a Prometheus sample"),
    (sim_stats().replace("envoy_server_state{} 0\n", ""), "lack envoy_server_state, which every Istio proxy reports"),
    (sim_stats().replace('envoy_cluster_upstream_rq_active{cluster_name="xds-grpc"} 1\n', ""),
     'lack envoy_cluster_upstream_rq_active{cluster_name="xds-grpc"}'),
    (sim_stats().replace("envoy_cluster_manager_cds_update_success{} ", "envoy_cluster_manager_cds_update_success{} NaN #"),
     "is not a Prometheus sample"),
    (sim_stats().replace("envoy_listener_manager_lds_update_rejected{} 0", "envoy_listener_manager_lds_update_rejected{} NaN"),
     "envoy_listener_manager_lds_update_rejected is nan, not a count"),
    (sim_stats().replace("envoy_listener_manager_lds_update_rejected{} 0", "envoy_listener_manager_lds_update_rejected{} -1"),
     "is -1.0, not a count"),
])
def test_unreadable_stats_name_the_pod_and_the_reason(text, expected):
    with pytest.raises(BadInput) as raised:
        read_proxy_xds(text, "waypoint-1", "bookinfo")
    assert "waypoint pod bookinfo/waypoint-1" in raised.value.message
    assert expected in raised.value.message and "\n" not in raised.value.message


def test_label_values_may_hold_escaped_quotes_commas_and_braces():
    (sample,) = envoystats.parse_prometheus('istio_build{component="pro\\"xy",tag="a,b}"} 1 1700000000000\n', "t")
    assert dict(sample.labels) == {"component": 'pro"xy', "tag": "a,b}"} and sample.value == 1


@FUZZ
@given(st.text())
def test_arbitrary_stats_text_gives_a_reading_or_bad_input(text):
    try:
        stats = read_proxy_xds(text, "w", "ns")
    except BadInput as error:
        assert error.message and "\n" not in error.message
    else:
        assert judge_proxy_xds(stats).status in ("pass", "warn", "fail")


@pytest.mark.parametrize("payload, version", [
    ("1.28.6-asm-r3-6f0e1b6c2a77e4f1d3f1e6c1e5f0a1b2c3d4e5f6-Clean", "1.28.6-asm-r3"),
    (b"1.28.0-unknown-unknown", "1.28.0"),
    ("1.29.0-beta.1-0123456789abcdef0123456789abcdef01234567-Modified\n", "1.29.0-beta.1"),
])
def test_istiods_own_version_from_its_version_endpoint(payload, version):
    assert parse_istiod_version(payload, "istiod-1") == version


@pytest.mark.parametrize("payload, error, expected", [
    ("404 page not found\n", DebugEndpointOff, "debug endpoint is off"),
    ("<html></html>", BadInput, "is an HTML page"),
    ("", BadInput, "is empty"),
    ("Clean", BadInput, "is not <version>-<revision>-<status>"),
    ("unknown-unknown-unknown", BadInput, "is not <version>-<revision>-<status>"),
])
def test_an_unreadable_version_answer_says_why(payload, error, expected):
    with pytest.raises(error) as raised:
        parse_istiod_version(payload, "istiod-1")
    assert "istiod pod istiod-1" in raised.value.message and expected in raised.value.message


def test_proxy_status_json_and_yaml_carry_istiods_own_version():
    for name in ("1.30-dev-multiXdsStatusSinglePilot.json", "1.30-dev-multiXdsStatusSingleNamespace.yaml"):
        (record,) = parse_proxy_status(read(name), name)
        assert (record.istiod, record.istiod_version) == ("istiod1", "1.1")
    assert parse_proxy_status(GOOD_TABLE, "t")[0].istiod_version is None  # tables do not carry it


# --- the same, end to end against the simulated cluster ------------------------------------------

VERIFY_SYNC = ("--only", "proxy-status", "-o", "json")


@pytest.fixture
def verify(tmp_path, run_cli):
    """Run `verify -n bookinfo --only proxy-status` against a scenario (name or Scenario); (sim, doc by check id)."""
    started: list[SimCluster] = []

    def run(scenario, expect: int, prepare=lambda sim: None):
        sim = SimCluster(scenario).start()
        started.append(sim)
        prepare(sim)
        kubeconfig = sim.write_kubeconfig(str(tmp_path / f"kubeconfig-{len(started)}"), namespace="bookinfo")
        doc = run_cli("verify", "--kubeconfig", kubeconfig, *VERIFY_SYNC, expect=expect).json
        by_id: dict[str, list[dict]] = {}
        for check in doc["checks"]:
            by_id.setdefault(check["id"], []).append(check)
        return sim, by_id

    yield run
    for sim in started:
        assert sim.writes() == []
        sim.stop()


def test_the_simulated_istiod_answers_404_with_exit_0_like_the_real_command(tmp_path):
    with SimCluster("debug-endpoint-off") as sim:
        client = Cluster(resolve_target(ClusterFlags(kubeconfig=sim.write_kubeconfig(str(tmp_path / "k")))))
        (istiod,) = [p["metadata"]["name"] for p in sim.store.list("pods", "istio-system")
                     if p["metadata"]["name"].startswith("istiod-")]
        syncz = client.exec("istio-system", istiod, "discovery", ["pilot-discovery", "request", "GET", "/debug/syncz"])
        assert (syncz.returncode, syncz.stdout) == (0, b"404 page not found\n")
        version = client.exec("istio-system", istiod, "discovery", ["pilot-discovery", "request", "GET", "/version"])
        assert version.returncode == 0 and parse_istiod_version(version.stdout, istiod) == "1.28.6-asm-r3"


def test_debug_endpoint_off_is_recognised_and_the_waypoints_own_stats_decide(verify):
    sim, checks = verify("debug-endpoint-off", expect=0)
    (available,) = checks["sync-status-available"]
    assert available["status"] == "warn"
    assert "ENABLE_DEBUG_ON_HTTP=false" in available["message"] and "404 page not found" in available["message"]
    (sync,) = checks["waypoint-sync"]
    assert sync["status"] == "pass" and "its own Envoy stats" in sync["message"]
    assert any(e.startswith("source: pilot-agent request GET stats/prometheus in bookinfo/waypoint-")
               for e in sync["evidence"])
    (version,) = checks["waypoint-proxy-version"]
    assert version["status"] == "pass"
    assert any("reports 1.28.6-asm-r3 (/version)" in e for e in version["evidence"])
    stats_execs = [r for r in sim.requests if r.exec_argv == ["pilot-agent", "request", "GET", "stats/prometheus"]]
    assert len(stats_execs) == 1 and stats_execs[0].exec_exit_code == 0  # read once for both checks


def test_debug_endpoint_off_and_a_disconnected_waypoint_fails(verify):
    _, checks = verify("debug-endpoint-off-disconnected", expect=1)
    assert checks["sync-status-available"][0]["status"] == "warn"
    (sync,) = checks["waypoint-sync"]
    assert sync["status"] == "fail" and "has no open xDS stream" in sync["message"]
    assert "open xDS streams (cluster xds-grpc): 0" in sync["evidence"]


def test_debug_endpoint_off_and_a_rejected_push_warns(verify):
    scenario = Scenario.from_yaml("name: t\ndescription: t\nbase: debug-endpoint-off\nsyncz:\n  proxies:\n"
                                  "    - {pod: 'waypoint-*', lastError: 'Proto constraint validation failed'}\n")
    _, checks = verify(scenario, expect=0)
    (sync,) = checks["waypoint-sync"]
    assert sync["status"] == "warn" and "rejected 1 LDS push(es)" in sync["message"]


def test_stats_that_cannot_be_read_leave_the_waypoint_inconclusive_never_passed(verify):
    _, checks = verify("debug-endpoint-off", expect=4, prepare=lambda sim: sim.deny("get", "pods/exec", "bookinfo"))
    (sync,) = checks["waypoint-sync"]
    assert sync["status"] == "inconclusive"
    assert "istiod's sync status does not cover every istiod" in sync["message"]
    assert 'cannot exec into waypoint pod bookinfo/waypoint-' in sync["message"]
    assert 'grant get and create on pods/exec' in sync["message"]
    assert checks["waypoint-proxy-version"][0]["status"] == "inconclusive"


@pytest.mark.parametrize("answer, reason", [
    (b"<html><body>502 Bad Gateway</body></html>", "answered an HTML page"),
    (b"404 page not found\n", "answered '404 page not found'"),
    (b"envoy_server_state{} 0\n", "lack envoy_cluster_manager_cds_update_success"),
])
def test_a_bad_stats_answer_leaves_the_waypoint_inconclusive_with_the_reason(verify, answer, reason):
    def prepare(sim):
        def handler(request, streams):
            if request.argv[:2] == ["pilot-agent", "request"]:
                streams.write_stdout(answer)
                return 0
            return sim.default_exec_handler(request, streams)
        sim.set_exec_handler(handler)

    _, checks = verify("debug-endpoint-off", expect=4, prepare=prepare)
    (sync,) = checks["waypoint-sync"]
    assert sync["status"] == "inconclusive" and reason in sync["message"]


def test_istiods_reported_version_is_judged_and_a_tag_mismatch_is_evidence(verify):
    # The image says 1.28.6 but istiod itself reports 1.27.3: the 1.28 waypoint is ahead of it.
    scenario = Scenario.from_yaml("name: t\ndescription: t\nbase: bookinfo\nsyncz:\n  istiodVersion: 1.27.3-asm-r2\n")
    _, checks = verify(scenario, expect=1)
    (version,) = checks["waypoint-proxy-version"]
    assert version["status"] == "fail" and "ahead of the control plane" in version["message"]
    assert any("image tag 1.28.6-asm-r3" in e for e in version["evidence"])
    assert any(e.startswith("mismatch: the image tag says 1.28.6-asm-r3 but istiod reports 1.27.3-asm-r2")
               for e in version["evidence"])


def test_a_waypoint_on_an_unreadable_istiod_is_asked_itself_not_called_disconnected(verify):
    # Two istiod replicas; the one the waypoint is connected to answers garbage. Its absence from the
    # other one's answer says nothing, so its own stats decide (before: "not connected", a false fail).
    scenario = Scenario.from_yaml("name: t\ndescription: t\nbase: bookinfo\nworkloads:\n"
                                  "  - {kind: Deployment, name: istiod, namespace: istio-system, replicas: 2}\n")

    def prepare(sim):
        def handler(request, streams):
            holds_waypoint = request.argv[3:] == ["/debug/syncz"] and any(
                entry["proxy"].startswith("waypoint-") for entry in syncz_entries(sim.store, {}, request.pod))
            if holds_waypoint:
                streams.write_stdout(b"<html>502 Bad Gateway</html>")
                return 0
            return sim.default_exec_handler(request, streams)
        sim.set_exec_handler(handler)

    sim, checks = verify(scenario, expect=0, prepare=prepare)
    (available,) = checks["sync-status-available"]
    assert available["status"] == "warn" and "is an HTML page, not JSON" in available["message"]
    (sync,) = checks["waypoint-sync"]
    assert sync["status"] == "pass" and "its own Envoy stats" in sync["message"]
    assert len([r for r in sim.requests if r.exec_argv and r.exec_argv[-1] == "/debug/syncz"]) == 2
