from tdm_dagster.sensors.alerts import (
    check_failure_alert_sensor,
    run_failure_alert_sensor,
)
from tdm_dagster.sensors.inbox import inbox_sensor
from tdm_dagster.sensors.queue_low import queue_low_sensor
from tdm_dagster.sensors.train_ready import train_ready_sensor

__all__ = ["check_failure_alert_sensor", "inbox_sensor", "queue_low_sensor", "run_failure_alert_sensor", "train_ready_sensor"]
