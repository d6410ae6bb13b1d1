"""Code every shop service shares: money in integer cents, API Gateway responses, settings."""

from shop_core.money import Money, parse_money
from shop_core.responses import error, json_response
from shop_core.settings import setting

__all__ = ["Money", "error", "json_response", "parse_money", "setting"]
