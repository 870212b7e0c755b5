"""Families: code shared by the recipes of one family of sources (ChestX-ray14, LLaVA-style, cell
microscopy, YOLO exports, radiology reports, Medical Meadow, ChatDoctor, text QA and text releases).
A recipe imports these; a family never imports a recipe.
"""
