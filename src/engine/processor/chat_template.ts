// SmolVLM's chat template, as the Hub ships it (HuggingFaceTB/SmolVLM-256M-Instruct,
// tokenizer_config.json / chat_template.json; identical to DEFAULT_CHAT_TEMPLATE of
// transformers' Idefics3 processor tests). Used when a model folder carries no template of its
// own, and written into the tiny test model so tests exercise the real template text.
//
// It renders `<|im_start|>User:<image>What is this?<end_of_utterance>\nAssistant:`: the role,
// then ':' (no space) if the message opens with an image and ': ' otherwise. It has no
// `{% generation %}` markers, so assistant-only loss masking is done in build_inputs.ts.
export const SMOLVLM_CHAT_TEMPLATE =
  "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";
