from tdm_dagster.sensors.inbox import inbox_sensor
from tdm_dagster.sensors.queue_low import queue_low_sensor

__all__ = ["inbox_sensor", "queue_low_sensor"]
