"""Verification harness for drivers that use DMF_LiveKernelDump (package `harness`, command `lkdh`)."""

__version__ = "0.1.0"
