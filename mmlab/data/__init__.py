"""Data for the lessons: the scene world, lesson images and image loading."""
