"""Small data bundled with tokenswarm.

:data:`CORPUS` is a short English corpus written for this project (no external source, no
licence encumbrance): 32 texts of one to four sentences on varied subjects and in varied
registers (narrative, technical, dialogue, instructions, lists, numbers), used by
``tokenswarm probe`` when no text is given and by the ``real-tokens`` experiment.

It is kept as a Python module rather than a text file so that it is part of every
installation (wheel, sdist, editable) without package-data configuration.
"""

from __future__ import annotations

__all__ = ["CORPUS", "load_corpus"]

CORPUS: tuple[str, ...] = (
    "The old lighthouse keeper climbed the spiral stairs every evening, counting the steps "
    "out loud so that he would not fall asleep before the lamp was lit.",
    "Water boils at a lower temperature on a mountain because the air pressure there is lower.",
    "She folded the letter twice, slipped it into her coat pocket, and decided not to read it "
    "until the train had left the station.",
    "To reset the router, hold the small button on the back for ten seconds and wait until "
    "the green light blinks three times.",
    "Bees communicate the direction of a flower patch by dancing in a figure eight on the "
    "comb; the angle of the dance points relative to the sun.",
    "\"Are you coming to the market tomorrow?\" asked Tom. \"Only if it stops raining,\" his "
    "sister replied, without looking up from her book.",
    "A prime number has exactly two divisors: one and itself. The number two is the only "
    "even prime.",
    "The committee postponed its decision on the new bridge until engineers could inspect "
    "the foundations of the western bank.",
    "Heat the oil in a heavy pan, add the chopped onions with a pinch of salt, and stir "
    "gently until they turn golden brown.",
    "In the winter of 1812 the retreating army lost more soldiers to the cold than to any "
    "battle of the campaign.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen inside the "
    "chloroplasts of green plants.",
    "My grandmother kept a garden full of tomatoes, beans and sunflowers taller than the "
    "fence.",
    "The function returns an empty list when the input is missing, and raises an error when "
    "the input has the wrong type.",
    "A quiet river wound through the valley, past sleeping farms and a mill whose wheel had "
    "not turned in fifty years.",
    "Stock prices fell sharply on Monday after the central bank announced an unexpected rise "
    "in interest rates.",
    "The museum opens at nine in the morning and closes at six, except on Thursdays, when it "
    "stays open until ten at night.",
    "Children learn languages remarkably quickly, often picking up grammar rules that nobody "
    "ever explained to them.",
    "The telescope revealed four small moons circling the planet, each casting a tiny shadow "
    "on the clouds below.",
    "Please remember to bring a pencil, an eraser and a calculator to the exam; phones are "
    "not allowed in the hall.",
    "He tried to fix the bicycle chain with a paper clip, which worked for almost a mile.",
    "Volcanic eruptions can cool the whole planet for a year or two, because ash and sulphur "
    "in the upper atmosphere reflect sunlight back into space.",
    "The recipe calls for two cups of flour, one egg, a spoon of sugar and a little milk.",
    "Late at night the city was silent except for the hum of the streetlights and a dog "
    "barking somewhere far away.",
    "Every triangle drawn on a flat sheet of paper has angles that add up to exactly one "
    "hundred and eighty degrees.",
    "The orchestra tuned their instruments while the audience found their seats and the "
    "lights slowly dimmed.",
    "Wolves were brought back to the park in the nineties, and within a decade the rivers "
    "themselves began to change their course.",
    "I lost my keys again, so I waited on the steps until my neighbour came home with the "
    "spare set.",
    "Machine translation has improved a great deal, yet jokes and poems are still "
    "surprisingly hard to carry from one language to another.",
    "The ship's cook served the same thin soup for nine days, and on the tenth day the crew "
    "caught a large silver fish.",
    "Glaciers move slowly downhill under their own weight, grinding the rock beneath them "
    "into fine grey powder.",
    "Before the storm, the farmers hurried to bring the hay into the barn and to lock the "
    "chickens in their coop.",
    "Yesterday the library received a box of old maps, some drawn by hand more than two "
    "centuries ago.",
)


def load_corpus() -> list[str]:
    """The bundled corpus, a fresh list of strings (safe to modify)."""
    return list(CORPUS)
