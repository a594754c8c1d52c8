"""The textbook, in numpy: activations and their saturation, the scalar chain rule, the
spectrum of ``W_hh``, exact Jacobian products of an Elman RNN, mean-field theory.

Each module is named after its idea and returns small frozen results, each with its
own figure as data; nothing here needs torch.
"""
