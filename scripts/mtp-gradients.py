"""Reference gradients of LongCat-Flash's objective with the MTP head, in float64 with PyTorch autograd.

Writes Tests/Reference/tiny-mtp-gradients.json, which Tests/LongCatTrainTests/MTPTrainingTests.swift compares
`longcat train --mtp-loss` against. The model is the tiny-mtp fixture: transformers' LongcatFlashForCausalLM for the
trunk, and an MTP head built from the same transformers blocks (LongcatFlashMLA, LongcatFlashMLP, LongcatFlashRMSNorm)
wired as Tests/Fixtures/tiny-mtp/README.md describes (the serving stacks' draft model):

    x_p = W_eh [RMSNorm_enorm(E[t_{p+1}]), RMSNorm_hnorm(h_p)]        h_p: the trunk's final-norm output
    y_p = a_p + MLP(RMSNorm_post(a_p)),  a_p = x_p + MLA(RMSNorm_in(x))_p
    M_p = lm_head(RMSNorm_mtp.norm(y_p))                               predicts t_{p+2}

loss = CE(trunk) + LAMBDA * CE(M_p, t_{p+2}), each the mean over the positions that have a target, with h_p not
detached (the trunk learns from the head's loss). A sequence's last row embeds token 0 and has no target.

Usage (with the venv of scripts/transformers-roundtrip.sh): .build/venv-transformers/bin/python scripts/mtp-gradients.py
"""
import json
import os

import torch
from safetensors.torch import load_file
from transformers import AutoConfig
from transformers.models.longcat_flash import modeling_longcat_flash as lc

ROOT = os.path.join(os.path.dirname(__file__), "..")
FIXTURE = os.path.join(ROOT, "Tests/Fixtures/tiny-mtp")
OUT = os.path.join(ROOT, "Tests/Reference/tiny-mtp-gradients.json")
LAMBDA = 0.5
INPUT_IDS = [[250, 82, 23, 39, 310, 37, 185, 109, 151, 60, 31, 116], [188, 24, 212, 292, 75, 318, 160, 266, 59, 222, 215, 74]]
# The head's tensors and a few of the trunk's that its loss reaches (the embedding twice, lm_head twice).
TRUNK_KEPT = ["model.embed_tokens.weight", "lm_head.weight", "model.norm.weight", "model.layers.1.mlps.1.down_proj.weight",
              "model.layers.0.self_attn.0.q_a_proj.weight"]

torch.manual_seed(0)
config = AutoConfig.from_pretrained(FIXTURE)
config._attn_implementation = "eager"
config._experts_implementation = "eager"  # the grouped kernels take no float64
config.head_dim = config.qk_rope_head_dim  # transformers sizes its rotary tables from head_dim (default 64)
model = lc.LongcatFlashForCausalLM.from_pretrained(FIXTURE, config=config, torch_dtype=torch.float64).eval()
weights = load_file(os.path.join(FIXTURE, "model.safetensors"))
H, eps = config.hidden_size, config.rms_norm_eps


class Head(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enorm = lc.LongcatFlashRMSNorm(H, eps)
        self.hnorm = lc.LongcatFlashRMSNorm(H, eps)
        self.eh_proj = torch.nn.Linear(2 * H, H, bias=False)
        self.input_layernorm = lc.LongcatFlashRMSNorm(H, eps)
        self.self_attn = lc.LongcatFlashMLA(config, layer_idx=0)
        self.post_attention_layernorm = lc.LongcatFlashRMSNorm(H, eps)
        self.mlp = lc.LongcatFlashMLP(config, config.ffn_hidden_size)
        self.norm = lc.LongcatFlashRMSNorm(H, eps)


NAMES = {  # checkpoint name -> module parameter
    "model.mtp.layers.0.enorm.m.weight": "enorm.weight",
    "model.mtp.layers.0.hnorm.m.weight": "hnorm.weight",
    "model.mtp.layers.0.eh_proj.weight": "eh_proj.weight",
    "model.mtp.layers.0.input_layernorm.weight": "input_layernorm.weight",
    "model.mtp.layers.0.post_attention_layernorm.weight": "post_attention_layernorm.weight",
    "model.mtp.norm.weight": "norm.weight",
}
for p in ["q_a_proj", "q_a_layernorm", "q_b_proj", "kv_a_proj_with_mqa", "kv_a_layernorm", "kv_b_proj", "o_proj"]:
    NAMES[f"model.mtp.layers.0.self_attn.{p}.weight"] = f"self_attn.{p}.weight"
for p in ["gate_proj", "up_proj", "down_proj"]:
    NAMES[f"model.mtp.layers.0.transformer_layer.mlp.{p}.weight"] = f"mlp.{p}.weight"

head = Head().double()
head.load_state_dict({NAMES[k]: weights[k].double() for k in NAMES}, strict=True)

ids = torch.tensor(INPUT_IDS)
B, T = ids.shape
hidden = model.model(input_ids=ids).last_hidden_state  # final-norm output h_p
logits = model.lm_head(hidden)
ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, config.vocab_size), ids[:, 1:].reshape(-1))

following = torch.cat([ids[:, 1:], torch.zeros(B, 1, dtype=ids.dtype)], dim=1)
x = head.eh_proj(torch.cat([head.enorm(model.model.embed_tokens(following)), head.hnorm(hidden)], dim=-1))
positions = torch.arange(T).unsqueeze(0)
rotary = model.model.rotary_emb(x, positions)
mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)[None, None]
a = x + head.self_attn(head.input_layernorm(x), position_embeddings=rotary, attention_mask=mask)[0]
y = a + head.mlp(head.post_attention_layernorm(a))
mtp_logits = model.lm_head(head.norm(y))
mtp_ce = torch.nn.functional.cross_entropy(mtp_logits[:, :-2].reshape(-1, config.vocab_size), ids[:, 2:].reshape(-1))
loss = ce + LAMBDA * mtp_ce
loss.backward()

gradients = {name: head.get_parameter(NAMES[name]).grad.flatten().tolist() for name in NAMES}
trunk = dict(model.named_parameters())
gradients.update({name: trunk[name].grad.flatten().tolist() for name in TRUNK_KEPT})
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump({
        "reference": "transformers LongcatFlashForCausalLM + an MTP head of transformers' blocks, float64 (scripts/mtp-gradients.py)",
        "input_ids": INPUT_IDS, "mtp_loss_weight": LAMBDA, "ce_loss": ce.item(), "mtp_loss": mtp_ce.item(),
        "gradients": {k: [float(f"{v:.9g}") for v in g] for k, g in gradients.items()},
    }, f)
print(f"wrote {OUT}: ce {ce.item():.6f}, mtp {mtp_ce.item():.6f}, {len(gradients)} tensors")
