from openai import OpenAI
from testcontainers.core.network import Network

from switchyard.testing import MockProviderContainer, SwitchyardContainer

CONFIG = """
providers:
  openai: {kind: openai, base_url: "http://mock-openai:18081", api_key: sk-test}
routes:
  - model: gpt-4o
    targets:
      - {name: main, provider: openai, model: gpt-4o}
      - {name: backup, provider: openai, model: gpt-4o-mini}
"""


def test_my_app_gets_an_answer_when_the_primary_model_is_down() -> None:
    with (
        Network() as network,
        MockProviderContainer("mock-openai", rules=["model=gpt-4o,status=503"], network=network) as mock,
        SwitchyardContainer(CONFIG, network=network) as gateway,
    ):
        client = OpenAI(base_url=gateway.base_url, api_key="my-app-key")
        answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert answer.model == "gpt-4o-mini"
        assert [r["body"]["model"] for r in mock.requests()] == ["gpt-4o", "gpt-4o-mini"]
