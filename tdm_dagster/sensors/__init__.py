from tdm_dagster.sensors.inbox import inbox_sensor
from tdm_dagster.sensors.queue_low import queue_low_sensor
from tdm_dagster.sensors.train_ready import train_ready_sensor

__all__ = ["inbox_sensor", "queue_low_sensor", "train_ready_sensor"]
