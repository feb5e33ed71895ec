"""Shared code for the Big-Model Labs course: one module per concern.

- ``utils.repro``   seeding and thread count
- ``utils.device``  CPU or CUDA
- ``utils.data``    offline data loaders with fixed splits
- ``utils.train``   a small training loop for torch classifiers
- ``utils.metrics`` evaluation metrics built from scratch
- ``utils.plots``   one consistent look for the course's figures
- ``utils.show``    renders the source of a from-scratch function in a notebook
- ``utils.checks``  the lab checks
- ``utils.labs``    builds ``labs/`` from ``solutions/``
- ``utils.course``  the registry of the lessons (lesson 00's map, the README check)
- ``utils.questions`` the index of the question banks' 135 questions and their lessons (QUESTIONS.md)
- ``utils.site``    the executed course as a static site that works offline (``make site``)
- ``utils.colab``   Colab badges and the guarded install cell, once ``utils.course.REPOSITORY`` is set
- ``utils.lm``      the course's small language model, its corpus and trained weights (lessons 04 onwards)
- one module per topic: ``longseq``, ``business``, ``augment``, ``regularize``, ``compression``, ``bench``, ``explain``,
  ``fairness``, ``privacy``, ``serving``
"""

__version__ = "0.1.0"
