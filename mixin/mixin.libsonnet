// The aws-vpn-exporter monitoring mixin: its alerts, recording rules and Grafana dashboards, the same as
// alerts/aws-vpn.rules.yml and dashboards/*.json (generated/ is written by scripts/generate from the same source;
// do not edit it by hand). _config holds every setting of alerts/settings.yml but the Alertmanager receivers:
// the exporter's job selector, the runbooks' address, and each threshold and hold (`for`), in camelCase
// (bgp_down_for is bgpDownFor; the README lists them). Override it to change them in every rule and dashboard:
//
//   (import 'mixin.libsonnet') + { _config+:: { jobSelector: 'job="vpn"', bgpDownFor: '5m', flapChanges: 6 } }
local config = import 'generated/config.json';
local rules = import 'generated/rules.json';
local dashboards = import 'generated/dashboards.json';

{
  _config+:: config.defaults,

  // A _config value as the rules write it: a string as it is, a number in its shortest form that reads back
  // as itself (0.3, not 0.29999999999999999), as the Python generator writes it. A value of another type than
  // its default's is refused, naming the key.
  local text(key) =
    local value = $._config[key];
    if std.type(value) != std.type(config.defaults[key]) then
      error '_config.%s: expected a %s, got %s' % [key, std.type(config.defaults[key]), std.manifestJson(value)]
    else if std.isString(value) then value
    else if value == std.floor(value) then std.toString(value)
    else [s for s in [std.format('%.' + p + 'g', value) for p in std.range(1, 17)] if std.parseJson(s) == value][0],
  // Each placeholder and its value's text, computed once (an array's elements are; an object's fields are not).
  local replacements = [[config.placeholders[key], text(key)] for key in std.objectFields(config.placeholders)],

  // Every string of the generated data with each placeholder replaced by its _config value.
  local fill(value) =
    if std.isString(value) then std.foldl(function(text, pair) std.strReplace(text, pair[0], pair[1]), replacements, value)
    else if std.isArray(value) then std.map(fill, value)
    else if std.isObject(value) then std.mapWithKey(function(_, field) fill(field), value)
    else value,

  prometheusAlerts+:: { groups+: fill(rules.alerts) },
  prometheusRules+:: { groups+: fill(rules.recording) },
  grafanaDashboards+:: fill(dashboards),
}
