"""The config is decoded strictly: each mistake fails at start-up naming file, key and reason."""

import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config import ConfigError, Target, load_config, parse_duration

VALID = """
poll_interval: 30s
targets:
  - regions: [us-east-1, eu-west-1]
  - regions: [ap-northeast-1]
    role_arn: arn:aws:iam::111111111111:role/vpn-exporter
    external_id: abc
logs:
  lookback: 1h
state_dir: ./state
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_the_documented_example_loads(tmp_path):
    config = load_config(write(tmp_path, VALID))
    assert config.poll_interval == 30
    assert config.targets[0].regions == ("us-east-1", "eu-west-1")
    assert config.targets[1].account_id_from_role == "111111111111"
    assert config.targets[1].external_id == "abc"
    assert config.logs.lookback == 3600
    assert str(config.state_dir) == "state"


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("1d", 86400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "5 m", "1.5h", "m5", "", "30s5", "-5s", "5y"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    "text,key,reason",
    [
        (VALID + "pol_interval: 1m\n", "pol_interval", "unknown key"),
        (VALID.replace("30s", "thirty"), "poll_interval", "expected a duration"),
        (VALID.replace("30s", "0s"), "poll_interval", "at least"),
        (VALID.replace("eu-west-1", "eu-west"), "targets[0].regions[1]", "not an AWS region"),
        (VALID.replace("eu-west-1", "us-east-1"), "targets[0].regions", "twice"),
        (VALID.replace("role/vpn-exporter", "user/bob"), "targets[1].role_arn", "not an IAM role ARN"),
        (VALID.replace("lookback: 1h", "lookback: forever"), "logs.lookback", "expected a duration"),
        (VALID.replace("lookback: 1h", "lookbak: 1h"), "logs.lookbak", "unknown key"),
        (VALID + "max_concurrency: 0\n", "max_concurrency", "between 1 and 256"),
        (VALID + "max_concurrency: yes\n", "max_concurrency", "expected int"),
        ("poll_interval: 30s\n", "targets", "missing"),
        ("targets: []\n", "targets", "non-empty list"),
        ("targets:\n  - role_arn: arn:aws:iam::111111111111:role/x\n", "targets[0].regions", "non-empty list"),
        ("targets:\n  - regions: [us-east-1]\n    region: x\n", "targets[0].region", "unknown key"),
        ("- just\n- a list\n", "(top level)", "expected a mapping"),
        (
            "poll_interval: 30s\npoll_timeout: 1m\ntargets:\n  - regions: [us-east-1]\n",
            "poll_timeout",
            "must not exceed",
        ),
    ],
)
def test_each_mistake_names_file_key_and_reason(tmp_path, text, key, reason):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}: {key}: ")


TWO_ROLES = """
targets:
  - regions: [eu-west-1]
    role_arn: arn:aws:iam::111111111111:role/vpn-exporter
  - regions: [us-east-1, eu-west-1]
    role_arn: arn:aws:iam::111111111111:role/another
"""


@pytest.mark.parametrize(
    "text,key,reason",
    [
        (
            TWO_ROLES,
            "targets[1].role_arn",
            "account 111111111111 in region eu-west-1 is already watched by targets[0] "
            "(arn:aws:iam::111111111111:role/vpn-exporter)",
        ),
        # the index is the target's place in the list, organizations included
        (
            TWO_ROLES.replace("targets:\n", "targets:\n  - organization: {role_name: r}\n    regions: all\n"),
            "targets[2].role_arn",
            "already watched by targets[1]",
        ),
        (
            "targets:\n  - organization: {role_name: r, role_arn: 'arn:aws:iam::111111111111:role/a'}\n    regions: all\n"
            "  - organization: {role_name: r, role_arn: 'arn:aws:iam::111111111111:role/b'}\n    regions: all\n",
            "targets",
            "roles in the same account (111111111111)",
        ),
    ],
)
def test_two_roles_in_one_account_and_region_are_an_error(tmp_path, text, key, reason):
    """Each would export the account's series in that region: every one twice, which Prometheus rejects."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (caught.value.source, caught.value.key) == (str(path), key)
    assert reason in caught.value.reason, caught.value.reason


def test_two_roles_in_one_account_may_watch_different_regions(tmp_path):
    config = load_config(write(tmp_path, TWO_ROLES.replace("[us-east-1, eu-west-1]", "[us-east-1]")))
    assert [target.regions for target in config.targets] == [("eu-west-1",), ("us-east-1",)]


def test_invalid_yaml_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"invalid YAML: line 2, column 1: "):
        load_config(write(tmp_path, "targets:\n\t- regions: [us-east-1]\n"))


def test_a_key_given_twice_is_an_error_not_an_overwrite(tmp_path):
    with pytest.raises(ConfigError, match=r"invalid YAML: line 3, column 1: duplicate key 'poll_interval'"):
        load_config(write(tmp_path, "poll_interval: 30s\ntargets: [{regions: [us-east-1]}]\npoll_interval: 5m\n"))


@pytest.mark.parametrize("text", ["{{}}", "{[a]: 1}", "? [a, b]\n: 1\n"])
def test_a_key_that_is_a_mapping_or_a_list_is_invalid_yaml_not_a_crash(tmp_path, text):
    with pytest.raises(ConfigError, match=r"invalid YAML: line 1, column \d+: found unhashable key"):
        load_config(write(tmp_path, text))


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path / "missing.yaml")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True, text=True, timeout=60)


def test_cli_fails_at_start_up_with_a_non_zero_exit(tmp_path):
    path = write(tmp_path, VALID.replace("30s", "often"))
    result = run_cli("--config", str(path))
    assert result.returncode == 1
    assert f"{path}: poll_interval: expected a duration" in result.stderr


def test_cli_config_check(tmp_path):
    result = run_cli("--config.check", "--config", str(write(tmp_path, VALID)))
    assert result.returncode == 0, result.stderr
    assert "OK (2 explicit targets)" in result.stdout


def test_cli_config_check_reports_two_roles_in_one_account_and_region(tmp_path):
    path = write(tmp_path, TWO_ROLES)
    result = run_cli("--config.check", "--config", str(path))
    assert result.returncode == 1
    assert f"{path}: targets[1].role_arn: account 111111111111 in region eu-west-1 is already watched" in result.stderr


def test_cli_needs_a_config_or_the_demo():
    result = run_cli()
    assert result.returncode == 2
    assert "--demo" in result.stderr


def test_cli_rejects_a_bad_listen_address():
    result = run_cli("--demo", "--web.listen-address", "localhost")
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr


def test_shards_partition_the_regions_without_overlap(tmp_path):
    regions = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "ap-southeast-2"]
    text = "targets:\n  - regions: [{}]\n  - regions: [{}]\n    role_arn: arn:aws:iam::111111111111:role/x\n".format(
        ", ".join(regions), ", ".join(regions)
    )
    owned = []
    for index in range(3):
        config = load_config(write(tmp_path, text + f"shard: {{index: {index}, count: 3}}\n"))
        owned += [(t.role_arn, r) for t in config.sharded_targets() for r in t.regions]
    assert sorted(owned, key=str) == sorted(
        [(role, r) for role in (None, "arn:aws:iam::111111111111:role/x") for r in regions], key=str
    )
    unsharded = load_config(write(tmp_path, text))
    assert unsharded.sharded_targets() == unsharded.targets


@pytest.mark.parametrize(
    "shard,key,reason",
    [
        ("{index: 3, count: 3}", "shard.index", "between 0 and count - 1"),
        ("{index: 0, count: 0}", "shard.count", "at least 1"),
        ("{idx: 0}", "shard.idx", "unknown key"),
    ],
)
def test_bad_shard(tmp_path, shard, key, reason):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, VALID + f"shard: {shard}\n"))
    assert (caught.value.key, reason in caught.value.reason) == (key, True)


def test_defaults_live_in_the_dataclasses_only():
    """A minimal file gets exactly the dataclasses' defaults: the parser has none of its own."""
    from exporter.config import Config, Target, parse_config

    parsed = parse_config({"targets": [{"regions": ["us-east-1"]}]}, "minimal.yaml")
    assert parsed == Config(targets=(Target(regions=("us-east-1",)),), source="minimal.yaml")


@pytest.mark.parametrize(
    "tags,reason",
    [
        ("[Team, team]", "become the same label tag_team"),
        ("[" + ", ".join(f"t{i}" for i in range(11)) + "]", "at most 10 tags"),
        ("Team", "expected a list of tag keys"),
    ],
)
def test_connection_tags_stay_few_and_distinct(tmp_path, tags, reason):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, VALID + f"connection_tags: {tags}\n"))
    assert caught.value.key == "connection_tags" and reason in caught.value.reason


ORGANIZATION = """
poll_interval: 30s
discovery_interval: 2h
empty_region_interval: 10m
targets:
  - regions: [us-east-1]
  - organization:
      role_name: vpn-exporter
      external_id: abc
      exclude_accounts: ["111111111111", "012345678901"]
      role_arn: arn:aws:iam::999999999999:role/org-reader
      management_account: skip
    regions: all
"""


def test_an_organization_target_loads_beside_explicit_ones(tmp_path):
    from exporter.config import Organization

    config = load_config(write(tmp_path, ORGANIZATION))
    assert config.targets == (Target(regions=("us-east-1",)),)
    assert config.organizations == (
        Organization(
            role_name="vpn-exporter",
            regions=None,
            external_id="abc",
            exclude_accounts=("111111111111", "012345678901"),
            role_arn="arn:aws:iam::999999999999:role/org-reader",
            management_account="skip",
        ),
    )
    assert (config.discovery_interval, config.empty_region_interval) == (7200, 600)
    listed = load_config(write(tmp_path, "targets:\n  - organization: {role_name: r}\n    regions: [eu-west-1]\n"))
    assert (
        listed.organizations[0].regions == ("eu-west-1",)
        and listed.organizations[0].management_account == "member_role"
    )


ORG = "targets:\n  - organization: {%s}\n    regions: all\n"


@pytest.mark.parametrize(
    "text,key,reason",
    [
        (ORG % "role_name: r, rol: x", "targets[0].organization.rol", "unknown key"),
        (ORG % "external_id: x", "targets[0].organization.role_name", "missing"),
        (ORG % "role_name: 'bad name'", "targets[0].organization.role_name", "not an IAM role name"),
        (
            ORG % "role_name: r, include_accounts: ['111111111111'], exclude_accounts: ['222222222222']",
            "targets[0].organization",
            "exclude each other",
        ),
        (
            ORG % "role_name: r, include_accounts: [111111111111]",
            "targets[0].organization.include_accounts[0]",
            "quote the account id",
        ),
        (
            ORG % "role_name: r, exclude_accounts: ['11111111111']",
            "targets[0].organization.exclude_accounts[0]",
            "not a 12-digit account id",
        ),
        (
            ORG % "role_name: r, exclude_accounts: ['111111111111', '111111111111']",
            "targets[0].organization.exclude_accounts",
            "twice",
        ),
        (ORG % "role_name: r, include_accounts: []", "targets[0].organization.include_accounts", "non-empty list"),
        (
            ORG % "role_name: r, management_account: assume",
            "targets[0].organization.management_account",
            "expected one of",
        ),
        (ORG % "role_name: r, home_region: global", "targets[0].organization.home_region", "not an AWS region"),
        (
            ORG % "role_name: r, role_arn: 'arn:aws:iam::1:user/x'",
            "targets[0].organization.role_arn",
            "not an IAM role ARN",
        ),
        ("targets:\n  - organization: {role_name: r}\n", "targets[0].regions", "missing"),
        (
            "targets:\n  - organization: {role_name: r}\n    regions: [nowhere]\n",
            "targets[0].regions[0]",
            "not an AWS region",
        ),
        (
            "targets:\n  - organization: {role_name: r}\n    regions: everything\n",
            "targets[0].regions",
            "expected all (every region each account has enabled), or a non-empty list",
        ),
        (
            "targets:\n  - organization: {role_name: r}\n    regions: all\n    role_arn: arn:aws:iam::111111111111:role/x\n",
            "targets[0].role_arn",
            "inside organization",
        ),
        ("targets:\n  - regions: all\n", "targets[0].regions", "needs an organization target"),
        (
            (ORG % "role_name: r") + "  - organization: {role_name: s}\n    regions: all\n",
            "targets",
            "same credentials",
        ),
        (
            "discovery_interval: 1h\ntargets:\n  - regions: [us-east-1]\n",
            "discovery_interval",
            "no organization target",
        ),
        ("discovery_interval: 30s\n" + ORG % "role_name: r", "discovery_interval", "at least 60s"),
        ("empty_region_interval: often\n" + ORG % "role_name: r", "empty_region_interval", "expected a duration"),
    ],
)
def test_each_organization_mistake_names_file_key_and_reason(tmp_path, text, key, reason):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (caught.value.key, caught.value.source) == (key, str(path))
    assert reason in caught.value.reason, caught.value.reason


def test_cli_config_check_counts_the_organizations(tmp_path):
    result = run_cli("--config.check", "--config", str(write(tmp_path, ORGANIZATION)))
    assert result.returncode == 0, result.stderr
    assert "OK (1 explicit target, 1 organization to discover)" in result.stdout


FOUR_MISTAKES = """
poll_intervall: 30s
targets:
  - regions: [us-east-1, eu-wset-1]
  - regions: [ap-northeast-1]
    role_arn: arn:aws:iam::111111111111:user/bob
logs:
  lookback: forever
"""


def test_four_mistakes_are_four_errors_in_file_order(tmp_path):
    """Every mistake at once, each with file, key and reason: a key whose value is wrong is skipped, not fatal."""
    path = write(tmp_path, FOUR_MISTAKES)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = [(p.source, p.key, p.reason) for p in caught.value.problems]
    assert [key for _, key, _ in problems] == [
        "poll_intervall",
        "targets[0].regions[1]",
        "targets[1].role_arn",
        "logs.lookback",
    ]
    assert {source for source, _, _ in problems} == {str(path)}
    reasons = [reason for _, _, reason in problems]
    assert reasons[0].startswith("unknown key, did you mean poll_interval?")
    assert "did you mean eu-west-1?" in reasons[1]
    assert "not an IAM role ARN" in reasons[2] and "expected a duration" in reasons[3]
    lines = str(caught.value).splitlines()
    assert len(lines) == 4 and all(line.startswith(f"{path}: ") for line in lines)
    assert (caught.value.key, caught.value.source) == ("poll_intervall", str(path))  # the first, as before


def test_a_mistake_inside_a_section_does_not_hide_the_next_section(tmp_path):
    text = (
        VALID + "tunnel_status: {interval: 1s}\ntraffic: {window: 2d, idle_after: 90d}\nshard: {count: 0, index: 0}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert [p.key for p in caught.value.problems] == [
        "tunnel_status.interval",
        "traffic.window",
        "traffic.idle_after",
        "shard.count",
    ]


def test_a_wrong_value_is_not_reported_again_by_a_check_across_keys(tmp_path):
    """poll_interval wrong: poll_timeout is not also said to exceed it (the default it fell back to)."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "poll_interval: often\npoll_timeout: 1m\ntargets: [{regions: [us-east-1]}]\n"))
    assert [p.key for p in caught.value.problems] == ["poll_interval"]


@pytest.mark.parametrize(
    "region,suggestion",
    [("eu-wset-1", "eu-west-1"), ("us-esat-2", "us-east-2"), ("cn-nrth-1", "cn-north-1"), ("moon-central-1", None)],
)
def test_a_region_botocore_does_not_know_is_refused_with_the_closest(tmp_path, region, suggestion):
    path = write(tmp_path, f"targets:\n  - regions: [us-east-1, {region}]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == "targets[0].regions[1]"
    assert caught.value.reason.startswith(f"not an AWS region name: {region!r}")
    if suggestion:
        assert f"did you mean {suggestion}?" in caught.value.reason


@pytest.mark.parametrize(
    "regions",
    [
        ["cn-north-1", "cn-northwest-1"],  # China
        ["us-gov-west-1", "us-gov-east-1"],  # GovCloud
        ["us-iso-east-1", "us-isob-east-1", "us-isof-south-1", "eu-isoe-west-1"],  # the isolated partitions
        ["eusc-de-east-1"],  # the European Sovereign Cloud: no two-letter prefix
        ["mx-central-1", "ap-southeast-7"],
    ],
)
def test_every_partitions_regions_are_accepted(tmp_path, regions, caplog):
    config = load_config(write(tmp_path, f"targets:\n  - regions: [{', '.join(regions)}]\n"))
    assert config.targets[0].regions == tuple(regions)
    assert "not listed by botocore" not in caplog.text


def test_a_region_newer_than_botocore_is_accepted_with_a_warning(tmp_path, caplog):
    """AWS adds regions; refusing one botocore does not list yet would lock its users out until botocore catches
    up. A name a partition's pattern matches, made of words known regions use, passes with a warning."""
    path = write(tmp_path, "targets:\n  - regions: [eu-south-9]\n")
    with caplog.at_level("WARNING", logger="exporter.config"):
        config = load_config(path)
    assert config.targets[0].regions == ("eu-south-9",)
    assert f"{path}: targets[0].regions[0]: region eu-south-9 is not listed by botocore" in caplog.text


def test_the_regions_come_from_botocores_partition_data():
    from botocore.loaders import create_loader

    from exporter import regions

    endpoints = create_loader().load_data("endpoints")
    listed = {region for partition in endpoints["partitions"] for region in partition["regions"]}
    assert set(regions.partitions().listed) == listed
    assert {regions.partition_of(r) for r in ("us-east-1", "cn-north-1", "us-gov-west-1")} == {
        "aws",
        "aws-cn",
        "aws-us-gov",
    }


def test_an_organizations_home_region_and_regions_are_checked_too(tmp_path):
    text = "targets:\n  - organization: {role_name: r, home_region: us-east1}\n    regions: [eu-wset-1]\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert [(p.key, p.reason.rpartition("(")[2]) for p in caught.value.problems] == [
        ("targets[0].organization.home_region", "did you mean us-east-1?)"),
        ("targets[0].regions[0]", "did you mean eu-west-1?)"),
    ]
    china = load_config(write(tmp_path, text.replace("us-east1", "cn-north-1").replace("eu-wset-1", "cn-north-1")))
    assert china.organizations[0].home_region == "cn-north-1"


def test_cli_config_check_reports_every_mistake_of_both_files(tmp_path):
    path = write(tmp_path, FOUR_MISTAKES)
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users: {prometheus: secret}\n")
    result = run_cli("--config.check", "--config", str(path), "--web.config.file", str(web))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {path}: poll_intervall: unknown key, did you mean poll_interval? (known keys: "
        + errors[0].partition("(known keys: ")[2],
        f"error: {path}: targets[0].regions[1]: not an AWS region name: 'eu-wset-1' (did you mean eu-west-1?)",
        f"error: {path}: targets[1].role_arn: not an IAM role ARN: 'arn:aws:iam::111111111111:user/bob'",
        f"error: {path}: logs.lookback: expected a duration such as 30s, 5m or 1h, got 'forever'",
        f"error: {web}: basic_auth_users.prometheus: expected a bcrypt hash (htpasswd -nBC 10 USER)",
    ]
    assert "OK" not in result.stdout
