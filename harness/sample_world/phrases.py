"""Per-kind sentence templates of the language datasets (filled by :func:`.language.fill`).

Placeholders: ``{role}`` / ``{role2}`` (first / second actor of a role, e.g. ``{fighter2}``),
``{role_dir}`` (its heading, "to the left"), ``{zone}`` ("the far sidewalk"), ``{at}`` ("on the far
sidewalk") and ``{region}`` ("the top-left part of the frame"). Each field holds alternative
phrasings; ``phases`` splits an event into consecutive parts ``(end fraction, captions)`` used as
clip captions. The texts only state what the scripts in ``events.py``, ``hazards.py`` and
``accidents.py`` make visible. ``tags``: kinds sharing a tag can look alike (both show someone
falling, say), so they are never each other's distractors.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindText:
    label: str
    tags: tuple[str, ...]
    short: tuple[str, ...]
    what: tuple[str, ...]
    phases: tuple[tuple[float, tuple[str, ...]], ...]
    why: tuple[str, ...]
    how: tuple[str, ...]


_VIOLENCE_WHY = (
    "people walking along a street are expected to pass each other peacefully, not to attack "
    "one another",
    "physical violence between passers-by breaks with the calm, orderly movement seen in the "
    "rest of the footage",
)

KINDS: dict[str, KindText] = {
    "fight": KindText(
        "Fighting",
        ("violence",),
        ("two people get into a fist fight", "two passers-by start hitting each other"),
        (
            "{fighter} and {fighter2} get into a fist fight {at}, swinging their arms at each "
            "other",
            "{fighter} and {fighter2} stop {at} and start brawling, hitting and shoving each other",
        ),
        (
            (0.5, ("{fighter} and {fighter2} face each other {at} and start throwing punches",)),
            (1.0, ("the two keep grappling and flailing their arms at each other {at}",)),
        ),
        _VIOLENCE_WHY,
        (
            "the fight can injure both people and put others walking nearby at risk; settling a "
            "quarrel with fists breaks the law and basic social norms",
            "such a brawl may end in serious injuries and frightens other pedestrians, and "
            "public violence is not tolerated in a shared space",
        ),
    ),
    "assault": KindText(
        "Assault",
        ("violence", "fall"),
        ("a person is knocked down from behind and the attacker flees",),
        (
            "{attacker} rushes up behind {victim} {at}, shoves them to the ground and runs off "
            "{attacker_dir}",
            "{victim} is attacked from behind {at}: {attacker} knocks them down and flees "
            "{attacker_dir}",
        ),
        (
            (0.3, ("{attacker} catches up with {victim} {at} and shoves them hard",)),
            (1.0, ("{victim} lies on the ground struggling while {attacker} runs away",)),
        ),
        (
            "an unprovoked attack on a passer-by is a violent act, not ordinary street behaviour",
            "pedestrians expect to walk safely; knocking someone down and fleeing is plainly "
            "abnormal",
        ),
        (
            "the victim can be badly hurt by the fall while the attacker escapes; assaulting a "
            "stranger is a crime and violates everyone's right to safety in public",
        ),
    ),
    "abuse": KindText(
        "Abuse",
        ("violence", "fall"),
        ("a person keeps beating someone who lies on the ground",),
        (
            "{attacker} keeps striking {victim}, who lies helpless on the ground {at}",
            "{victim} lies on the ground {at} while {attacker} stands over them and hits them "
            "again and again",
        ),
        ((1.0, ("{attacker} repeatedly hits {victim}, who is lying on the ground {at}",)),),
        (
            "beating a person who is already on the ground and cannot defend themselves is "
            "violent abuse",
        ),
        (
            "the person on the ground may suffer serious injuries; attacking a defenceless person "
            "violates the law and basic decency",
        ),
    ),
    "shooting": KindText(
        "Shooting",
        ("shooting",),
        ("a person fires a gun in the street", "someone opens fire with a gun"),
        (
            "{shooter} stops {at} and fires a gun, muzzle flashes lighting up, while the people "
            "nearby run away and the shooter then flees",
            "{shooter} opens fire {at}; muzzle flashes are visible, passers-by run for their "
            "lives and the shooter runs off too",
        ),
        (
            (0.45, ("{shooter} stands {at} firing a gun, with bright muzzle flashes",)),
            (1.0, ("passers-by flee in panic and {shooter} runs off out of view",)),
        ),
        (
            "firing a gun in a public street is an act of extreme violence that never belongs to "
            "ordinary street life",
        ),
        (
            "gunfire can kill or wound anyone nearby and spreads panic; carrying and firing a "
            "weapon in public is a grave crime",
        ),
    ),
    "fire": KindText(
        "Arson",
        ("fire",),
        ("someone sets a trash bin on fire", "a trash bin is set alight"),
        (
            "{arsonist} sets the trash bin {at} on fire and runs off {arsonist_dir}; flames and "
            "smoke rise from the bin",
            "the trash bin {at} bursts into flames just as {arsonist} hurries away "
            "{arsonist_dir}, and smoke rises from it",
        ),
        (
            (0.4, ("flames flare up from the trash bin {at} as {arsonist} runs away",)),
            (1.0, ("the bin keeps burning, flames flickering and smoke rising above it",)),
        ),
        (
            "street furniture does not catch fire by itself; someone deliberately set the bin "
            "alight and ran away",
        ),
        (
            "the fire can spread, injure passers-by and damage property; deliberately setting "
            "fires is arson, a serious crime",
        ),
    ),
    "explosion": KindText(
        "Explosion",
        ("explosion", "fire"),
        ("an explosion goes off", "something explodes with a fireball"),
        (
            "an explosion goes off {at}: a blinding flash and a fireball, debris flying, then "
            "flames and smoke while passers-by flee",
            "a blast erupts {at} with a bright flash and a fireball that throws debris around; "
            "a fire keeps burning there and the people nearby run away",
        ),
        (
            (0.3, ("a bright flash and a fireball burst {at}, throwing debris",)),
            (1.0, ("flames burn {at} under rising smoke as people run away",)),
        ),
        (
            "a sudden blast with a fireball is a violent, destructive event, far from the quiet "
            "traffic seen before",
        ),
        (
            "an explosion can kill or injure people and destroy vehicles and buildings, and it "
            "causes panic in the street",
        ),
    ),
    "car_crash": KindText(
        "RoadAccidents",
        ("crash",),
        ("two cars crash head-on", "a car collides head-on with an oncoming car"),
        (
            "{car} drifts into the oncoming lane and crashes head-on into {car2}; debris flies, "
            "hazard lights blink and smoke rises",
            "{car} crosses into the opposite lane and collides head-on with {car2}, scattering "
            "debris; the wrecks stand still with hazard lights blinking",
        ),
        (
            (0.35, ("{car} veers into the opposite lane and hits {car2} head-on",)),
            (
                1.0,
                (
                    "the damaged cars stand with hazard lights blinking and smoke rising while "
                    "passers-by rush over waving their arms",
                ),
            ),
        ),
        (
            "cars are expected to keep to their own lane; leaving it and hitting oncoming traffic "
            "is a traffic accident",
        ),
        (
            "a head-on collision can badly injure the people in both cars and blocks the road; "
            "drifting across the centre line breaks basic traffic rules",
        ),
    ),
    "vehicle_on_sidewalk": KindText(
        "RoadAccidents",
        ("traffic",),
        ("a car swerves onto the sidewalk", "a car races along the pavement"),
        (
            "{car} swerves out of its lane onto {zone} and races along it {car_dir}, forcing "
            "{pedestrian} to run out of its way",
            "{car} leaves the road, mounts {zone} and speeds along it {car_dir} while "
            "{pedestrian} jumps aside",
        ),
        ((1.0, ("{car} drives fast along {zone} and {pedestrian} runs out of its way",)),),
        (
            "sidewalks are meant for pedestrians; a car driving along one at speed is extremely "
            "dangerous",
        ),
        (
            "the car could run people down; driving on the sidewalk breaks traffic law and "
            "endangers everyone walking there",
        ),
    ),
    "riot": KindText(
        "Riot",
        ("violence",),
        ("a crowd brawls and throws stones",),
        ("a crowd rushes in {at}, brawls and throws stones, then scatters",),
        ((1.0, ("a group of people fights {at}, stones flying, then runs off",)),),
        ("a group fight with thrown stones is mass violence, not ordinary street activity",),
        ("people can be hurt by blows and stones and property can be damaged",),
    ),
    "skateboard": KindText(
        "Riderless skateboard",
        ("skateboard",),
        ("a skateboard rolls by with nobody on it",),
        ("a skateboard with nobody on it rolls fast along {zone} {board_dir}",),
        ((1.0, ("an empty skateboard speeds along {zone}",)),),
        ("skateboards do not move on their own; a fast riderless board is out of place",),
        ("the board can trip or hit people walking along the path",),
    ),
    "chase": KindText(
        "Chasing",
        ("running",),
        ("one person chases another at full speed",),
        ("{chaser} chases {fleeing} at a sprint along {zone}, both running {fleeing_dir}",),
        ((1.0, ("{fleeing} sprints along {zone} with {chaser} close behind",)),),
        ("everyone else walks calmly; one person hunting another at a sprint is unusual",),
        ("a chase can end in violence or in someone falling or colliding with others",),
    ),
    "fall": KindText(
        "Falling",
        ("fall",),
        ("a pedestrian stumbles and falls",),
        ("{faller} suddenly stumbles and falls {at}, struggling on the ground",),
        ((1.0, ("{faller} lies on the ground {at}, trying to get up",)),),
        ("people walking normally do not end up lying on the ground",),
        ("the person may be hurt and need help",),
    ),
    "sudden_appearance": KindText(
        "Sudden appearance",
        ("appear",),
        (
            "a person suddenly appears out of nowhere",
            "a pedestrian pops into existence in the middle of the path",
        ),
        (
            "{subject} suddenly appears out of thin air in the middle of {zone} and walks on "
            "{subject_dir}",
        ),
        ((1.0, ("{subject} materialises on {zone} and walks on",)),),
        ("people do not materialise from nothing; everyone else enters from the frame edges",),
        ("the footage is physically inconsistent",),
    ),
    "disappearance": KindText(
        "Disappearance",
        ("vanish",),
        (
            "a walking person suddenly vanishes into thin air",
            "a pedestrian disappears mid-stride",
        ),
        ("{subject}, walking {subject_dir} along {zone}, suddenly vanishes into thin air",),
        ((1.0, ("the spot on {zone} where a person was walking is suddenly empty",)),),
        ("people do not vanish; everyone else leaves through the frame edges",),
        ("the footage is physically inconsistent",),
    ),
    "crosswalk_hit": KindText(
        "Traffic accident",
        ("traffic", "fall"),
        ("a car hits a pedestrian on the zebra crossing",),
        (
            "{car} fails to stop for {victim}, who is crossing on the zebra crossing, and hits "
            "them; the pedestrian is thrown onto the road and the car brakes to a halt",
        ),
        ((1.0, ("{car} strikes {victim} on the zebra crossing",)),),
        ("drivers must give way to people on a zebra crossing",),
        ("the pedestrian can be badly injured",),
    ),
    "jaywalk_hit": KindText(
        "Traffic accident",
        ("traffic", "fall"),
        ("a car hits a pedestrian crossing the road",),
        (
            "{victim} walks out into the road away from any crossing and is hit by {car}; the "
            "pedestrian is thrown onto the road and the car brakes to a halt",
        ),
        ((1.0, ("{car} strikes {victim} in the middle of the road",)),),
        ("pedestrians should cross at a crossing after checking for traffic",),
        ("the pedestrian can be badly injured",),
    ),
    "cyclist_hit": KindText(
        "Traffic accident",
        ("traffic", "fall"),
        ("a car hits a cyclist from behind",),
        (
            "{car} drives into {victim}, who is cycling {victim_dir} along the edge of the lane, "
            "from behind; the cyclist is thrown off the bicycle onto the road",
        ),
        ((1.0, ("{car} runs into the cyclist from behind",)),),
        ("drivers must keep a safe distance from cyclists ahead of them",),
        ("the cyclist can be badly injured",),
    ),
}

#: Things that never happen in the sample world (extra distractors).
NEVER = (
    "a dog runs across the road",
    "a person climbs a lamp post",
    "a tree falls onto the road",
    "a bus breaks down at the kerb",
    "a person spray-paints the wall of the building",
    "a horse walks along the road",
    "a bicycle is stolen from a rack",
)


def distractors(kind: str) -> list[str]:
    """Short descriptions of other kinds (sharing no tag with ``kind``) and of things that
    never happen, as wrong options for "what is unusual" questions."""
    tags = set(KINDS[kind].tags)
    out = [k.short[0] for name, k in KINDS.items() if name != kind and not tags & set(k.tags)]
    return out + list(NEVER)
