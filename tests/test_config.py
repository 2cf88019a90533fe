"""The config is decoded strictly: each mistake fails at start-up naming file, key and reason."""

import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config import ConfigError, load_config, parse_duration

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


@pytest.mark.parametrize("text,key,reason", [
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
    ("poll_interval: 30s\npoll_timeout: 1m\ntargets:\n  - regions: [us-east-1]\n", "poll_timeout", "must not exceed"),
])
def test_each_mistake_names_file_key_and_reason(tmp_path, text, key, reason):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_invalid_yaml_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"invalid YAML: line 2, column 1: "):
        load_config(write(tmp_path, "targets:\n\t- regions: [us-east-1]\n"))


def test_a_key_given_twice_is_an_error_not_an_overwrite(tmp_path):
    with pytest.raises(ConfigError, match=r"invalid YAML: line 3, column 1: duplicate key 'poll_interval'"):
        load_config(write(tmp_path, "poll_interval: 30s\ntargets: [{regions: [us-east-1]}]\npoll_interval: 5m\n"))


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
    assert "OK (2 targets)" in result.stdout


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
        ", ".join(regions), ", ".join(regions))
    owned = []
    for index in range(3):
        config = load_config(write(tmp_path, text + f"shard: {{index: {index}, count: 3}}\n"))
        owned += [(t.role_arn, r) for t in config.sharded_targets() for r in t.regions]
    assert sorted(owned, key=str) == sorted([(role, r) for role in (None, "arn:aws:iam::111111111111:role/x")
                                             for r in regions], key=str)
    unsharded = load_config(write(tmp_path, text))
    assert unsharded.sharded_targets() == unsharded.targets


@pytest.mark.parametrize("shard,key,reason", [
    ("{index: 3, count: 3}", "shard.index", "between 0 and count - 1"),
    ("{index: 0, count: 0}", "shard.count", "at least 1"),
    ("{idx: 0}", "shard.idx", "unknown key"),
])
def test_bad_shard(tmp_path, shard, key, reason):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, VALID + f"shard: {shard}\n"))
    assert (caught.value.key, reason in caught.value.reason) == (key, True)


def test_defaults_live_in_the_dataclasses_only():
    """A minimal file gets exactly the dataclasses' defaults: the parser has none of its own."""
    from exporter.config import Config, Target, parse_config

    parsed = parse_config({"targets": [{"regions": ["us-east-1"]}]}, "minimal.yaml")
    assert parsed == Config(targets=(Target(regions=("us-east-1",)),), source="minimal.yaml")


@pytest.mark.parametrize("tags,reason", [
    ("[Team, team]", "become the same label tag_team"),
    ("[" + ", ".join(f"t{i}" for i in range(11)) + "]", "at most 10 tags"),
    ("Team", "expected a list of tag keys"),
])
def test_connection_tags_stay_few_and_distinct(tmp_path, tags, reason):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, VALID + f"connection_tags: {tags}\n"))
    assert caught.value.key == "connection_tags" and reason in caught.value.reason
