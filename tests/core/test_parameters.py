"""Parameter resolution (``mila.parameters.resolve_parameters``): the one place a service's
``[service].parameters`` are resolved; deployers receive the result as
``DeployContext.parameters``."""

from __future__ import annotations

import pytest

from mila.errors import ConfigError
from mila.parameters import resolve_parameters

PARAMETERS = {"Name": "${env}-${region}", "Url": "${db.Url}/x"}


def test_env_region_and_dependency_outputs_are_substituted() -> None:
    values = resolve_parameters(PARAMETERS, service="api", environment="dev",
                                region="eu-west-1", outputs={"db": {"Url": "pg://h"}})
    assert values == {"Name": "dev-eu-west-1", "Url": "pg://h/x"}


def test_an_output_of_a_service_not_deployed_there_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a deployed dependency"):
        resolve_parameters(PARAMETERS, service="api", environment="dev", region="eu-west-1",
                           outputs={})
