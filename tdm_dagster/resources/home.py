import dagster as dg

from tdm_dagster.config.settings import TdmConfig, load_config
from tdm_dagster.home import TdmHome


class TdmHomeResource(dg.ConfigurableResource):
    """Where all state lives, and the config read from it.

    ``root`` empty means ``$TDM_HOME`` (default ``~/.tdm``). The config file is re-read
    on each use, so an edit applies to the next run without reloading the code location.
    """

    root: str = ""

    def home(self) -> TdmHome:
        return TdmHome.from_env(self.root or None).ensure()

    def config(self) -> TdmConfig:
        return load_config(self.home())
