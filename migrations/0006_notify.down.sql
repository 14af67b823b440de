DROP TABLE IF EXISTS notification_attempts;
DROP TABLE IF EXISTS notifications;
DROP TABLE IF EXISTS notify_leader;
DROP TABLE IF EXISTS alert_acks;
DROP TABLE IF EXISTS silences;
DROP TABLE IF EXISTS inhibit_rules;
DROP TABLE IF EXISTS notify_routes;
DROP TABLE IF EXISTS notify_channels;
