"""`tokenomy prices --json NAME` resolves the names real logs carry: dated snapshots and the provider-prefixed forms
of the major providers (LiteLLM's `azure/`, `bedrock/`, `vertex_ai/`, `gemini/`, `groq/`, `together_ai/`,
`openrouter/`, …), Bedrock and Vertex ids, OpenRouter ids and OpenAI fine-tunes. Each row: the name, the catalogue
entry it must resolve to, and that entry's standard input / output USD per 1M tokens on 2026-11-25."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tokenomy.cli.prices_cmd import prices_group

CHECKS = [
    # OpenAI: dated snapshots, the provider prefix, Azure's names (Azure prices OpenAI's models at OpenAI's rates)
    ("gpt-4-turbo-2024-04-09", "openai/gpt-4-turbo", "10", "30"),
    ("openai/gpt-4-turbo-2024-04-09", "openai/gpt-4-turbo", "10", "30"),
    ("gpt-4o-2024-08-06", "openai/gpt-4o", "2.5", "10"),
    ("gpt-4o-2024-05-13", "openai/gpt-4o-2024-05-13", "5", "15"),
    ("gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini", "0.15", "0.6"),
    ("gpt-4.1-2025-04-14", "openai/gpt-4.1", "2", "8"),
    ("o3-mini-2025-01-31", "openai/o3-mini", "1.1", "4.4"),
    ("gpt-3.5-turbo-0125", "openai/gpt-3.5-turbo", "0.5", "1.5"),
    ("gpt-4-0613", "openai/gpt-4", "30", "60"),
    ("azure/gpt-4o-2024-08-06", "openai/gpt-4o", "2.5", "10"),
    ("azure/gpt-35-turbo", "openai/gpt-3.5-turbo", "0.5", "1.5"),
    ("ft:gpt-4o-mini-2024-07-18:acme::9xYz1234", "openai/ft:gpt-4o-mini", "0.3", "1.2"),
    # Anthropic: dated ids, the first-party prefix, Bedrock ids (plain, LiteLLM's bedrock/, cross-region us.),
    # Vertex AI's @date ids
    ("claude-3-5-sonnet-20241022", "anthropic/claude-3-5-sonnet", "3", "15"),
    ("claude-3-haiku-20240307", "anthropic/claude-3-haiku", "0.25", "1.25"),
    ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5", "3", "15"),
    ("anthropic/claude-haiku-4-5", "anthropic/claude-haiku-4-5", "1", "5"),
    ("anthropic.claude-3-5-sonnet-20241022-v2:0", "aws/regional.anthropic.claude-3-5-sonnet-20241022-v2:0", "3", "15"),
    ("bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0", "aws/regional.anthropic.claude-3-5-sonnet-20241022-v2:0",
     "3", "15"),
    ("bedrock/us.anthropic.claude-3-7-sonnet-20250219-v1:0", "aws/regional.anthropic.claude-3-7-sonnet-20250219-v1:0",
     "3", "15"),
    ("bedrock/meta.llama3-1-70b-instruct-v1:0", "aws/meta.llama3-1-70b-instruct-v1:0", "0.72", "0.72"),
    ("vertex_ai/claude-3-5-sonnet-v2@20241022", "google/claude-3-5-sonnet", "3", "15"),
    # Google: Gemini API and Vertex AI names
    ("gemini/gemini-2.0-flash", "google/gemini-2.0-flash", "0.1", "0.4"),
    ("vertex_ai/gemini-1.5-pro-002", "google/gemini-1.5-pro", "1.25", "5"),
    ("gemini-2.5-flash", "google/gemini-2.5-flash", "0.3", "2.5"),
    # OpenRouter ids, with and without LiteLLM's prefix: OpenRouter's own rows
    ("openrouter/openai/gpt-4o", "openrouter/openai/gpt-4o", "2.5", "10"),
    ("meta-llama/llama-3.3-70b-instruct", "openrouter/meta-llama/llama-3.3-70b-instruct", "0.59", "0.79"),
    # hosted open models and the other first parties
    ("groq/llama-3.3-70b-versatile", "groq/llama-3.3-70b-versatile", "0.59", "0.79"),
    ("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
     "0.88", "0.88"),
    ("mistral/mistral-large-latest", "mistral/mistral-large", "2", "6"),
    ("xai/grok-2-1212", "x-ai/grok-2-1212", "2", "10"),
    ("deepseek/deepseek-chat", "deepseek/deepseek-chat", "0.28", "0.42"),
]


@pytest.mark.parametrize(("name", "model", "input_usd", "output_usd"), CHECKS)
def test_prices_resolves_names_real_logs_carry(name: str, model: str, input_usd: str, output_usd: str,
                                              tmp_path: object) -> None:
    result = CliRunner().invoke(prices_group, ["--json", "--at", "2026-11-25", name],
                                env={"TOKENOMY_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["model"], body["input"], body["output"], body["asked"]) == (model, input_usd, output_usd, name)


def test_a_name_nobody_prices_is_an_error_not_zero(tmp_path: object) -> None:
    result = CliRunner().invoke(prices_group, ["--json", "my-private-model-7b"], env={"TOKENOMY_HOME": str(tmp_path)})
    assert result.exit_code != 0 and "no price for model 'my-private-model-7b'" in str(result.exception)
