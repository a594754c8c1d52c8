"""An encoder-decoder as people build it: an LSTM encoder and a decoder that steps a cell.

``Seq2Seq(vocab, embed, hidden)`` reads source tokens ``(B, S)`` and target
tokens ``(B, T)`` (int64, teacher forcing). The encoder is a fused
``nn.LSTM`` (batch_first) run once over the source; the decoder is an
``nn.LSTMCell`` called once per target step, starting from the encoder's final
state; a linear head turns each decoder state into logits ``(B, T, vocab)``.

It holds two recurrent modules, ``encoder`` and ``decoder``::

    rnngrad profile --model examples/seq2seq.py:Seq2Seq --model-args '{"vocab": 50}' \\
        --module encoder --input pairs.pt ...
"""

from __future__ import annotations

import torch
from torch import nn


class Seq2Seq(nn.Module):
    """Embedding -> nn.LSTM encoder -> nn.LSTMCell decoder (teacher forcing) -> Linear."""

    def __init__(self, vocab: int = 50, embed: int = 16, hidden: int = 32) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.encoder = nn.LSTM(embed, hidden, batch_first=True)
        self.decoder = nn.LSTMCell(embed, hidden)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _, (h_n, c_n) = self.encoder(self.embedding(source))
        h, c = h_n[-1], c_n[-1]
        steps = []
        for token in self.embedding(target).unbind(1):
            h, c = self.decoder(token, (h, c))
            steps.append(self.head(h))
        return torch.stack(steps, dim=1)
