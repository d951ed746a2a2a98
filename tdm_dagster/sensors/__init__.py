from tdm_dagster.sensors.queue_low import queue_low_sensor

__all__ = ["queue_low_sensor"]
