"""Reporting: terminal table, Allure steps and attachments, JSON run record."""
