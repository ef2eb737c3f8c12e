"""Airflow names that moved between versions, imported once.

Airflow 3 and 2.11 get them through the common-compat provider's ``sdk`` module; on
Airflow 2.10 the newest compatible common-compat (1.9) does not re-export them yet, so
they come from their Airflow 2 homes.
"""

from __future__ import annotations

try:
    from airflow.providers.common.compat.sdk import (
        AirflowException,
        AirflowSkipException,
        BaseOperator,
        TaskDeferred,
        conf,
    )
except ImportError:  # Airflow 2.10
    from airflow.configuration import conf
    from airflow.exceptions import (
        AirflowException,
        AirflowSkipException,
        TaskDeferred,
    )
    from airflow.models import BaseOperator

__all__ = ["AirflowException", "AirflowSkipException", "BaseOperator", "TaskDeferred", "conf"]
