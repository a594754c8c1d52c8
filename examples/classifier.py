"""A text classifier as people build it: embedding, a bidirectional LSTM, a linear head.

``Classifier(vocab, embed, hidden, classes)`` reads token ids ``(B, T)`` (int64),
runs a 2-layer bidirectional ``nn.LSTM`` (batch_first, dropout between layers)
and classifies ``cat(h_n[-2], h_n[-1])``: the top layer's final forward state
(input position T) and final reverse state (input position 1). With
``lengths`` it packs the padded batch, so each sequence ends at its own length.

Profile it::

    rnngrad profile --model examples/classifier.py:Classifier \\
        --model-args '{"vocab": 1000}' --state-dict classifier.pt \\
        --input tokens.npy --target labels.npy --loss cross-entropy
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class Classifier(nn.Module):
    """Embedding -> 2-layer bidirectional LSTM -> Linear on the final states."""

    def __init__(
        self,
        vocab: int = 1000,
        embed: int = 32,
        hidden: int = 64,
        classes: int = 4,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(
            embed, hidden, num_layers=2, batch_first=True, bidirectional=True, dropout=dropout
        )
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        embedded = self.embedding(tokens)
        if lengths is not None:
            packed = pack_padded_sequence(
                embedded, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            _, (h_n, _) = self.lstm(packed)
        else:
            _, (h_n, _) = self.lstm(embedded)
        return self.head(torch.cat([h_n[-2], h_n[-1]], dim=-1))
