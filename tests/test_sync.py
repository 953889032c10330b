"""Sync status from istiod's /debug/syncz and captured istioctl proxy-status output, and the
verdicts on a waypoint built from it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_waypoint.errors import BadInput
from kubectl_waypoint.sync import (
    ProxySync,
    judge_waypoint_sync,
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
    ("", "is not JSON"),
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
