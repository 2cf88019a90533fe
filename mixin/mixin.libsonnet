// The aws-vpn-exporter monitoring mixin: its alerts, recording rules and Grafana dashboards, the same as
// alerts/aws-vpn.rules.yml and dashboards/*.json (generated/ is written by scripts/generate from the same source;
// do not edit it by hand). Override _config to change the exporter's job selector or the runbooks' address in
// every rule and dashboard:
//
//   (import 'mixin.libsonnet') + { _config+:: { jobSelector: 'job="vpn"' } }
local config = import 'generated/config.json';
local rules = import 'generated/rules.json';
local dashboards = import 'generated/dashboards.json';

{
  _config+:: config.defaults,

  // Every string of the generated data with each placeholder replaced by its _config value.
  local fill(value) =
    if std.isString(value) then
      std.foldl(function(text, key) std.strReplace(text, config.placeholders[key], $._config[key]),
                std.objectFields(config.placeholders), value)
    else if std.isArray(value) then std.map(fill, value)
    else if std.isObject(value) then std.mapWithKey(function(_, field) fill(field), value)
    else value,

  prometheusAlerts+:: { groups+: fill(rules.alerts) },
  prometheusRules+:: { groups+: fill(rules.recording) },
  grafanaDashboards+:: fill(dashboards),
}
