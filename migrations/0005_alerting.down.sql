DROP TABLE IF EXISTS alert_history;
DROP TABLE IF EXISTS alert_instances;
DROP TABLE IF EXISTS alert_rule_leases;
DROP TABLE IF EXISTS alert_replicas;
DROP TABLE IF EXISTS alert_rules;
