#!/usr/bin/env python3
"""Renders tests/data/chat/conversations.json with an official chat template (Python jinja2),
giving the expected prompts that test_chat compares gemma.c's renderer with, byte for byte.

  gen-renders.py gemma4 TEMPLATE > renders-gemma4.json    # google-gemma-4-31B-it.jinja
  gen-renders.py gemma3 TEMPLATE TOOLS_TEMPLATE > renders-gemma3.json

TEMPLATE is the official template file (llama.cpp's models/templates/, or a GGUF's
tokenizer.chat_template); it is not part of this repository. Gemma 3's template has no tools:
conversations with tools are rendered with TOOLS_TEMPLATE (gemma3-tools.jinja, gemma.c's own
format), and the script checks that it renders every tool-free conversation exactly as the
official template does. As llama.cpp does, tool-call arguments given as JSON text are passed
to the template as objects; tojson is Hugging Face's (json.dumps, ensure_ascii=False)."""
import hashlib, json, os, sys

try:
    import jinja2
except ImportError:
    sys.exit("needs jinja2 (pip install jinja2)")


def environment():
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None: json.dumps(x, ensure_ascii=False, indent=indent)
    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)
    env.globals["raise_exception"] = raise_exception
    return env


def template_messages(conv):
    out = []
    for m in conv["messages"]:
        m = dict(m)
        calls = []
        for c in m.get("tool_calls") or []:
            c = json.loads(json.dumps(c))
            try:
                args = json.loads(c["function"]["arguments"])
                if isinstance(args, dict):
                    c["function"]["arguments"] = args
            except (ValueError, TypeError):
                pass
            calls.append(c)
        if "tool_calls" in m:
            m["tool_calls"] = calls
        out.append(m)
    return out


def render(tpl, conv):
    kw = {"messages": template_messages(conv), "bos_token": "<bos>",
          "add_generation_prompt": conv.get("add_generation_prompt", True)}
    if conv.get("tools"):
        kw["tools"] = conv["tools"]
    if "enable_thinking" in conv:
        kw["enable_thinking"] = conv["enable_thinking"]
    return tpl.render(**kw)


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("gemma3", "gemma4") or (sys.argv[1] == "gemma3") != (len(sys.argv) == 4):
        sys.exit(__doc__)
    family, path = sys.argv[1], sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    convs = json.load(open(os.path.join(here, "conversations.json"), encoding="utf-8"))
    env = environment()
    src = open(path, encoding="utf-8").read()
    official = env.from_string(src)
    tools_tpl = env.from_string(open(sys.argv[3], encoding="utf-8").read()) if family == "gemma3" else None
    renders = []
    for conv in convs:
        if family not in conv.get("families", ["gemma3", "gemma4"]):
            continue
        plain = not conv.get("tools") and not any(m["role"] == "tool" or m.get("tool_calls") for m in conv["messages"])
        if tools_tpl is None:
            text = render(official, conv)
        else:
            text = render(tools_tpl, conv)
            if plain:
                assert text == render(official, conv), f"{conv['name']}: the tools template differs from Gemma 3's"
        renders.append({"name": conv["name"], "text": text})
    out = {"template_sha256": hashlib.sha256(src.encode()).hexdigest(), "renders": renders}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


main()
