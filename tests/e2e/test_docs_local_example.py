from openai import OpenAI

CONFIG = """
providers:
  openai: {kind: openai, base_url: "MOCK_URL", api_key: sk-test}
routes:
  - model: gpt-4o
    targets:
      - {name: main, provider: openai, model: gpt-4o}
      - {name: backup, provider: openai, model: gpt-4o-mini}
"""


def test_my_app_gets_an_answer_when_the_primary_model_is_down(switchyard_mock_provider, switchyard_gateway) -> None:
    mock = switchyard_mock_provider("openai", rules=["model=gpt-4o,status=503"])
    gateway = switchyard_gateway(CONFIG.replace("MOCK_URL", mock.url))
    client = OpenAI(base_url=gateway.base_url, api_key="my-app-key")
    answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert answer.model == "gpt-4o-mini"
